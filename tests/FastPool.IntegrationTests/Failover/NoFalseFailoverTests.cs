using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using Npgsql;
using static FastPool.IntegrationTests.Failover.FailoverChecks;

namespace FastPool.IntegrationTests.Failover;

/// <summary>
/// What Pgpool-II with failover_on_backend_error fails over on, FastPool does not: a backend ended by
/// pg_terminate_backend (57P01), a slow query, a refused login. The lost server makes FastPool probe the
/// node, the probe finds it alive, and the primary stays the primary.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class NoFalseFailoverTests
{
    [Fact]
    public async Task TerminatedBackend_SlowQuery_AndRefusedLogin_NeverFailOver()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        await using var proxy = cluster.StartProxy(c => c with
        {
            FastPool = c.FastPool with
            {
                Failover = FailoverCluster.FastHealthChecks with { HealthCheckTimeout = TimeSpan.FromSeconds(1), HealthCheckMaxRetries = 0 },
            },
        });
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");

        var pid = await TerminateOneClientsBackendAsync(proxy, cluster);

        // A slow query on a client session: the health checks use their own connections, so they are not held up.
        await using (var slow = await proxy.OpenAsync("app"))
        {
            await using var sleep = new NpgsqlCommand("SELECT pg_sleep(3)", slow);
            await sleep.ExecuteNonQueryAsync();
        }

        // A login the server refuses (no such role).
        var refused = await Assert.ThrowsAnyAsync<PostgresException>(() => proxy.OpenAsync("app", "no_such_role"));
        Assert.Equal("28000", refused.SqlState);

        Assert.True(proxy.Logs.Any(l => l.Contains("suspected", StringComparison.Ordinal)), "no probe after the lost server:\n" + string.Join("\n", proxy.Logs));
        var nodes = await AdminSupport.ShowAsync(proxy.Port, "SHOW POOL_NODES");
        Assert.Equal("primary", nodes.Value(Row(nodes, 0), "role"));
        Assert.Equal("up", nodes.Value(Row(nodes, 0), "status"));
        Assert.Equal("standby", nodes.Value(Row(nodes, 1), "role"));
        Assert.Equal("up", nodes.Value(Row(nodes, 1), "status"));
        Assert.Equal("t", await cluster.Standby.PsqlAsync("SELECT pg_is_in_recovery()"));
        await using var after = await proxy.OpenAsync("app");
        Assert.Equal(cluster.Primary.Port, await ServerPortAsync(after));
        Assert.NotEqual(pid, await ProxyChecks.BackendPidAsync(after));
    }

    /// <summary>The control: with Pgpool-II's failover_on_backend_error the same terminated backend fails the primary over.</summary>
    [Fact]
    public async Task WithFailoverOnBackendError_ATerminatedBackendFailsOver()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        await using var proxy = cluster.StartProxy(c => c with
        {
            FastPool = c.FastPool with { Failover = FailoverCluster.FastHealthChecks with { FailoverOnBackendError = true } },
        });
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");

        await TerminateOneClientsBackendAsync(proxy, cluster);

        await WaitForNodeAsync(proxy, 1, "primary", "up");
        Assert.Equal("f", await cluster.Standby.PsqlAsync("SELECT pg_is_in_recovery()"));
    }

    /// <summary>
    /// An admin ends the backend of a client in the middle of a transaction; FastPool sees the server go, and
    /// once it has (the client sends nothing meanwhile, so nothing races it), the client's next query gets 57P01.
    /// </summary>
    private static async Task<int> TerminateOneClientsBackendAsync(ProxyHost proxy, FailoverCluster cluster)
    {
        await using var victim = await proxy.OpenAsync("app");
        await using (var begin = new NpgsqlCommand("BEGIN", victim))
        {
            await begin.ExecuteNonQueryAsync();
        }

        int pid = await ProxyChecks.BackendPidAsync(victim);
        await Backend.ExecuteAsync(cluster.Primary, $"SELECT pg_terminate_backend({pid})");
        await Wait.UntilAsync(
            () => Task.FromResult(proxy.Logs.Any(l => l.Contains("server conn crashed", StringComparison.Ordinal) || l.Contains("lost its server", StringComparison.Ordinal)
                || l.Contains("after a FATAL error", StringComparison.Ordinal)
                || l.Contains("backend error", StringComparison.Ordinal))),
            TimeSpan.FromSeconds(10),
            "FastPool noticed the lost server:\n" + string.Join("\n", proxy.Logs));
        var terminated = await Assert.ThrowsAnyAsync<PostgresException>(async () =>
        {
            await using var cmd = new NpgsqlCommand("SELECT 1", victim);
            await cmd.ExecuteScalarAsync();
        });
        Assert.Equal("57P01", terminated.SqlState);
        return pid;
    }
}
