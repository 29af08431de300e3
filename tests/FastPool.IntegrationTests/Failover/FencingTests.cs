using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;
using static FastPool.IntegrationTests.Failover.FailoverChecks;

namespace FastPool.IntegrationTests.Failover;

/// <summary>Writes never go to two primaries: the old primary, restarted after a failover, is kept out and shown as needing recovery.</summary>
[Collection(PostgresCollection.Name)]
public sealed class FencingTests
{
    [Fact]
    public async Task OldPrimaryRestartedAfterFailover_IsNotUsed_AndShownAsNeedingRecovery()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        await cluster.Primary.PsqlAsync("CREATE TABLE t (v text)");
        await using var proxy = cluster.StartProxy();
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");

        await cluster.Primary.KillAsync();
        await WaitForNodeAsync(proxy, 1, "primary", "up");

        // The old primary comes back on its own timeline, not in recovery: a second primary.
        await cluster.Primary.StartAsync();
        var nodes = await WaitForNodeAsync(proxy, 0, "primary", "needs_recovery");
        Assert.Contains("node 1 is the primary", nodes.Value(Row(nodes, 0), "last_change_reason"), StringComparison.Ordinal);

        // Clients, new and old, write to the promoted node only.
        for (int i = 0; i < 5; i++)
        {
            await using var conn = await proxy.OpenAsync("app");
            Assert.Equal(cluster.Standby.Port, await ServerPortAsync(conn));
            await using var insert = new NpgsqlCommand("INSERT INTO t VALUES ('after')", conn);
            await insert.ExecuteNonQueryAsync();
        }

        Assert.Equal("5", await cluster.Standby.PsqlAsync("SELECT count(*) FROM t WHERE v = 'after'"));
        Assert.Equal("0", await cluster.Primary.PsqlAsync("SELECT count(*) FROM t WHERE v = 'after'"));

        // It stays fenced through later health checks.
        await Task.Delay(TimeSpan.FromSeconds(2));
        nodes = await AdminSupport.ShowAsync(proxy.Port, "SHOW POOL_NODES");
        Assert.Equal("needs_recovery", nodes.Value(Row(nodes, 0), "status"));
        Assert.Equal("primary", nodes.Value(Row(nodes, 1), "role"));
    }

    /// <summary>
    /// After a failover both nodes run as primaries (the old one was restarted) and FastPool itself restarts:
    /// with no memory of the failover it still picks the node on the newest timeline, and writes never reach the old one.
    /// </summary>
    [Fact]
    public async Task FastPoolRestartedWithTwoPrimaries_ChoosesTheNewestTimeline()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        await cluster.Primary.PsqlAsync("CREATE TABLE t (v text)");
        await using (var first = cluster.StartProxy())
        {
            await WaitForNodeAsync(first, 0, "primary", "up");
            await WaitForNodeAsync(first, 1, "standby", "up");
            await cluster.Primary.KillAsync();
            await WaitForNodeAsync(first, 1, "primary", "up");
        }

        await cluster.Primary.StartAsync();
        Assert.Equal("f", await cluster.Primary.PsqlAsync("SELECT pg_is_in_recovery()"));

        // The old primary is listed first, and answers first.
        await using var proxy = cluster.StartProxy();
        await using (var conn = await proxy.OpenAsync("app"))
        {
            Assert.Equal(cluster.Standby.Port, await ServerPortAsync(conn));
            await using var insert = new NpgsqlCommand("INSERT INTO t VALUES ('after restart')", conn);
            await insert.ExecuteNonQueryAsync();
        }

        var nodes = await WaitForNodeAsync(proxy, 0, "primary", "needs_recovery");
        Assert.Equal("primary", nodes.Value(Row(nodes, 1), "role"));
        Assert.Equal("up", nodes.Value(Row(nodes, 1), "status"));
        Assert.Equal("0", await cluster.Primary.PsqlAsync("SELECT count(*) FROM t"));
        Assert.Equal("1", await cluster.Standby.PsqlAsync("SELECT count(*) FROM t"));
    }
}
