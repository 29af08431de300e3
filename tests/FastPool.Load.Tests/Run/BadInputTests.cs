using System.Net;
using System.Net.Sockets;
using FastPool.Load.Tests.Infrastructure;

namespace FastPool.Load.Tests.Run;

/// <summary>Mistakes a user makes get one readable line and a non-zero exit, never a stack trace.</summary>
[Collection(LoadPostgresCollection.Name)]
public sealed class BadInputTests(LoadPostgresFixture fixture) : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("fastpool-load-bad-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    [Fact]
    public async Task Unreachable_target()
    {
        var result = await RunAsync($"db=Host=127.0.0.1;Port={ClosedPort()};Username=postgres;Timeout=5");
        AssertOneLineError(result, "cannot connect");
    }

    [Fact]
    public async Task Wrong_password()
    {
        var connectionString = fixture.Cluster.ConnectionString(LoadPostgresFixture.BenchDatabase, LoadPostgresFixture.PasswordUser) + ";Password=wrong";
        var result = await RunAsync($"db={connectionString}");
        AssertOneLineError(result, "28P01");
        Assert.DoesNotContain("wrong", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Script_with_a_sql_syntax_error_names_file_and_line()
    {
        var script = Path.Combine(_out, "broken.sql");
        await File.WriteAllTextAsync(script, "\\set aid random(1, 10)\n\nSELEC abalance\n  FROM pgbench_accounts WHERE aid = :aid;\n");
        var result = await RunAsync($"db={fixture.ConnectionString()}", "--script", script);
        AssertOneLineError(result, "broken.sql:3: syntax error");
    }

    [Fact]
    public async Task Script_with_a_bad_meta_command()
    {
        var script = Path.Combine(_out, "meta.sql");
        await File.WriteAllTextAsync(script, "\\sleep 10\nSELECT 1;\n");
        var result = await RunAsync($"db={fixture.ConnectionString()}", "--script", script);
        AssertOneLineError(result, "meta.sql:1: unknown meta-command");
    }

    private static void AssertOneLineError(LoadResult result, string expected)
    {
        Assert.NotEqual(0, result.ExitCode);
        var lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, result.Error);
        Assert.StartsWith("fastpool-load: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(expected, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", result.Error.Replace("at or near", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private Task<LoadResult> RunAsync(string target, params string[] args) =>
        LoadPostgresFixture.RunAsync(["run", "--target", target, "--duration", "1s", "--no-live", "--out", _out, .. args]);
}
