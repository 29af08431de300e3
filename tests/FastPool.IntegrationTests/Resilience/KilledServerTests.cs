using System.Diagnostics;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Sandbox;
using Npgsql;

namespace FastPool.IntegrationTests.Resilience;

/// <summary>A PostgreSQL server of the Resilience tests' own, for tests that kill it (never the shared fixture primary).</summary>
public sealed class PrivateClusterFixture : IAsyncLifetime
{
    private PgCluster? _cluster;

    internal PgCluster Cluster => _cluster ?? throw new InvalidOperationException("not initialized");

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var directory = Directory.CreateTempSubdirectory("fastpool-res-").FullName;
        _cluster = await PgCluster.StartPrimaryAsync(directory, new PgClusterOptions { MaxConnections = 30 }, cts.Token);
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}

/// <summary>The backend crashes (SIGKILL of postmaster and children) under the proxy, then comes back.</summary>
[Collection(PostgresCollection.Name)]
public sealed class KilledServerTests : IClassFixture<PrivateClusterFixture>
{
    private readonly PgCluster _cluster;

    public KilledServerTests(PrivateClusterFixture fixture)
    {
        _cluster = fixture.Cluster;
    }

    [Fact]
    public async Task ServerKilledMidQuery_ClientGetsError_AndNewClientWorksAfterRestart()
    {
        await EnsureRunningAsync();
        await using var proxy = ProxyHost.Start(_cluster, c => c with
        {
            ServerLoginRetry = TimeSpan.FromMilliseconds(100),
            ServerConnectTimeout = TimeSpan.FromSeconds(5),
        });

        try
        {
            await using var victim = await proxy.OpenAsync();
            await using var sleep = new NpgsqlCommand("select pg_sleep(30)", victim);
            var running = sleep.ExecuteNonQueryAsync();
            await Wait.UntilAsync(
                async () => await Backend.ScalarAsync<long>(_cluster,
                    "select count(*) from pg_stat_activity where state = 'active' and query = 'select pg_sleep(30)'") > 0,
                TimeSpan.FromSeconds(10),
                "pg_sleep(30) running on the backend");

            var sw = Stopwatch.StartNew();
            await _cluster.KillAsync();
            var ex = await Assert.ThrowsAnyAsync<NpgsqlException>(() => running.WaitAsync(TimeSpan.FromSeconds(20)));
            sw.Stop();
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"the client learnt of the crash only after {sw.Elapsed}");
            if (ex is PostgresException pg)
            {
                Assert.Contains(pg.SqlState, new[] { "08006", "57P01" });
            }

            // While the server is down, a new client gets a connection error promptly (no hang): at login, or,
            // since the proxy logs clients in with the pool's cached parameters, at its first query.
            sw.Restart();
            var down = await Assert.ThrowsAnyAsync<NpgsqlException>(() => OpenAndQueryAsync(proxy).WaitAsync(TimeSpan.FromSeconds(20)));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"connecting to a dead server took {sw.Elapsed}");
            if (down is PostgresException downPg)
            {
                Assert.Contains(downPg.SqlState, new[] { "08001", "08006" });
            }
        }
        finally
        {
            await EnsureRunningAsync();
        }

        // server_login_retry is 100 ms: once it has passed, the proxy connects to the restarted server.
        await Task.Delay(300);
        await ProxyChecks.AssertServesAsync(proxy);
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    /// <summary>
    /// The crash also kills the connections idling in the pool. PgBouncer notices the EOF on an idle server
    /// connection and drops it; the first client after the restart must not be handed a dead socket.
    /// </summary>
    [Fact]
    public async Task ServerKilledWhilePoolHasIdleConnection_FirstClientAfterRestartWorks()
    {
        await EnsureRunningAsync();
        await using var proxy = ProxyHost.Start(_cluster, c => c with
        {
            ServerLoginRetry = TimeSpan.FromMilliseconds(100),
            ServerConnectTimeout = TimeSpan.FromSeconds(5),
        });

        int oldPid;
        await using (var first = await proxy.OpenAsync())
        {
            oldPid = await ProxyChecks.BackendPidAsync(first);
        }

        // The server connection now sits idle in the pool.
        await Backend.WaitIdleInPoolAsync(_cluster, oldPid);

        try
        {
            await _cluster.KillAsync();
        }
        finally
        {
            await EnsureRunningAsync();
        }

        await Task.Delay(300);
        await using var after = await proxy.OpenAsync();
        await using var cmd = new NpgsqlCommand("select pg_backend_pid()", after);
        var newPid = (int)(await cmd.ExecuteScalarAsync())!;
        Assert.NotEqual(oldPid, newPid);
    }

    private static async Task OpenAndQueryAsync(ProxyHost proxy)
    {
        await using var conn = await proxy.OpenAsync();
        await ProxyChecks.ScalarAsync(conn, "select 1");
    }

    private async Task EnsureRunningAsync()
    {
        if (!_cluster.IsRunning)
        {
            await _cluster.StartAsync();
        }
    }
}
