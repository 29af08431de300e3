using System.Globalization;
using FastPool.Load.Cli;
using FastPool.Sandbox;

namespace FastPool.Load.Tests.Infrastructure;

[CollectionDefinition(Name)]
public sealed class LoadPostgresCollection : ICollectionFixture<LoadPostgresFixture>
{
    public const string Name = "load-postgres";
}

/// <summary>
/// One sandbox PostgreSQL for the harness tests, with pgbench tables (scale 1, made by fastpool-load init)
/// in <see cref="BenchDatabase"/> and in <see cref="CountDatabase"/>, the latter used only by the test that
/// compares transaction counts, so nothing else moves its xact_commit.
/// </summary>
public sealed class LoadPostgresFixture : IAsyncLifetime
{
    public const string BenchDatabase = "bench";
    public const string CountDatabase = "xactcount";
    public const string PasswordUser = "load_pw";
    public const string Password = "right_pw";

    private PgCluster? _cluster;

    internal PgCluster Cluster => _cluster ?? throw new InvalidOperationException("not started");

    public string ConnectionString(string database = BenchDatabase) => Cluster.ConnectionString(database);

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var directory = Directory.CreateTempSubdirectory("fastpool-load-").FullName;
        _cluster = await PgCluster.StartPrimaryAsync(
            directory,
            new PgClusterOptions { ExtraHbaEntries = [$"host all {PasswordUser} 127.0.0.1/32 scram-sha-256"] },
            cts.Token);
        await _cluster.PsqlAsync($"CREATE DATABASE {BenchDatabase}", ct: cts.Token);
        await _cluster.PsqlAsync($"CREATE DATABASE {CountDatabase}", ct: cts.Token);
        await _cluster.PsqlAsync($"CREATE ROLE {PasswordUser} LOGIN PASSWORD '{Password}'", ct: cts.Token);
        foreach (var database in new[] { BenchDatabase, CountDatabase })
        {
            var result = await RunAsync("init", "--target", $"db={ConnectionString(database)}", "--scale", "1");
            Assert.True(result.ExitCode == 0, result.Error);
        }
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }

    /// <summary>Runs fastpool-load in process, capturing its output.</summary>
    public static async Task<LoadResult> RunAsync(params string[] args)
    {
        using var output = new StringWriter(CultureInfo.InvariantCulture);
        using var error = new StringWriter(CultureInfo.InvariantCulture);
        var exitCode = await LoadApp.InvokeAsync(args, output, error);
        return new LoadResult(exitCode, output.ToString(), error.ToString());
    }
}

public sealed record LoadResult(int ExitCode, string Output, string Error);
