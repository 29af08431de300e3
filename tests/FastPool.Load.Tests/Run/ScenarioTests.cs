using System.Text.Json;
using FastPool.Load.Tests.Infrastructure;

namespace FastPool.Load.Tests.Run;

/// <summary>Every built-in scenario, and a custom script, runs against a real server without an error.</summary>
[Collection(LoadPostgresCollection.Name)]
public sealed class ScenarioTests(LoadPostgresFixture fixture) : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("fastpool-load-scenario-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    // select, extended and tpcb run in RunTests.
    [Theory]
    [InlineData("prepared")]
    [InlineData("connect")]
    [InlineData("crowd")]
    [InlineData("mixed")]
    [InlineData("cache")]
    [InlineData("script")]
    public async Task Scenario_completes_transactions_without_errors(string scenario)
    {
        string[] extra = scenario switch
        {
            // 40 sessions held open, 2 of them working.
            "crowd" => ["--clients", "40", "--active", "2"],
            "mixed" => ["--clients", "2", "--read-ratio", "0.5"],
            "script" => ["--clients", "2", "--script", await WriteScriptAsync()],
            _ => ["--clients", "2"],
        };
        string[] scenarioArgs = scenario == "script" ? [] : ["--scenario", scenario];

        // 2 s, not less: on a busy 2-core CI machine the first worker of a fresh process was seen to start only after
        // a 500 ms slice had already ended, leaving 0 transactions to count.
        var result = await LoadPostgresFixture.RunAsync(
            ["run", "--target", $"db={fixture.ConnectionString()}", .. scenarioArgs, .. extra, "--duration", "2s", "--out", _out, "--no-live"]);

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Error}");
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "report.json")));
        Assert.Equal(scenario, report.RootElement.GetProperty("scenario").GetString());
        var target = report.RootElement.GetProperty("targets")[0];
        Assert.True(target.GetProperty("transactions").GetInt64() > 0, result.Output);
        Assert.Equal(0, target.GetProperty("errors").GetInt64());
    }

    private async Task<string> WriteScriptAsync()
    {
        var path = Path.Combine(_out, "custom.sql");
        await File.WriteAllTextAsync(path, """
            -- a custom transaction: a read and a write of one account
            \set aid random(1, 100000 * :scale)
            \set delta random(-10, 10)
            BEGIN;
            SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
            UPDATE pgbench_accounts SET abalance = abalance + :delta
              WHERE aid = :aid;
            END;
            """);
        return path;
    }
}
