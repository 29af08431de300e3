using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using Npgsql;
using static FastPool.IntegrationTests.Failover.FailoverChecks;

namespace FastPool.IntegrationTests.Failover;

/// <summary>
/// During a failover: the client in the middle of a transaction on the lost primary gets a clean connection
/// error (nothing is replayed), while a client queued behind it for a server gets its answer from the new
/// primary, without an error.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class QueuedClientTests
{
    [Fact]
    public async Task ClientInTransaction_GetsAConnectionError_WhileTheQueuedClient_ContinuesOnTheNewPrimary()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        await using var proxy = cluster.StartProxy(c => c with { DefaultPoolSize = 1 });
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");

        // The holder takes the pool's only server and keeps it in a transaction.
        await using var holder = await proxy.OpenAsync("app");
        await using (var begin = new NpgsqlCommand("BEGIN; CREATE TABLE never_committed (v int)", holder))
        {
            await begin.ExecuteNonQueryAsync();
        }

        // The queued client waits for that server.
        await using var queued = await proxy.OpenAsync("app");
        await using var ask = new NpgsqlCommand("SELECT current_setting('port')::int", queued);
        var answer = ask.ExecuteScalarAsync();
        await Task.Delay(300);
        Assert.False(answer.IsCompleted, "the second client should be waiting for the pool's only server");

        await cluster.Primary.KillAsync();

        Assert.Equal(cluster.Standby.Port, (int)(await answer.WaitAsync(TimeSpan.FromSeconds(30)))!);
        var error = await Assert.ThrowsAnyAsync<PostgresException>(async () =>
        {
            await using var commit = new NpgsqlCommand("COMMIT", holder);
            await commit.ExecuteNonQueryAsync();
        });
        Assert.Contains(error.SqlState, new[] { "08006", "57P01" });
        Assert.Equal("0", await cluster.Standby.PsqlAsync("SELECT count(*) FROM pg_class WHERE relname = 'never_committed'"));
    }

    /// <summary>failover = off: clients wait up to failover_wait_timeout and are told; the old primary coming back takes the writes again.</summary>
    [Fact]
    public async Task FailoverOff_ClientsGetAClearErrorAfterTheWait_AndTheRestartedPrimaryServesAgain()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        await using var proxy = cluster.StartProxy(c => c with
        {
            FastPool = c.FastPool with
            {
                Failover = FailoverCluster.FastHealthChecks with { Mode = Proxy.Configuration.FailoverMode.Off, FailoverWaitTimeout = TimeSpan.FromSeconds(2) },
            },
        });
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");
        await using var idle = await proxy.OpenAsync("app");

        await cluster.Primary.KillAsync();
        await WaitForNodeAsync(proxy, 0, "primary", "down");

        var error = await Assert.ThrowsAnyAsync<PostgresException>(async () =>
        {
            await using var cmd = new NpgsqlCommand("SELECT 1", idle);
            await cmd.ExecuteScalarAsync();
        });
        Assert.Equal("08006", error.SqlState);
        Assert.Contains("no primary available", error.MessageText, StringComparison.Ordinal);
        Assert.Equal("t", await cluster.Standby.PsqlAsync("SELECT pg_is_in_recovery()"));

        await cluster.Primary.StartAsync();
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await using var again = await proxy.OpenAsync("app");
        Assert.Equal(cluster.Primary.Port, await ServerPortAsync(again));
    }

    /// <summary>auto_failback: a standby that comes back streaming from the primary is attached again by itself.</summary>
    [Fact]
    public async Task AutoFailback_ReattachesAStandbyThatStreamsAgain()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        await using var proxy = cluster.StartProxy(c => c with
        {
            FastPool = c.FastPool with { Failover = FailoverCluster.FastHealthChecks with { AutoFailback = true } },
        });
        await WaitForNodeAsync(proxy, 1, "standby", "up");

        await cluster.Standby.KillAsync();
        await WaitForNodeAsync(proxy, 1, "standby", "down");
        await cluster.Standby.StartAsync();

        var nodes = await WaitForNodeAsync(proxy, 1, "standby", "up");
        Assert.Contains("auto_failback", nodes.Value(Row(nodes, 1), "last_change_reason"), StringComparison.Ordinal);
        Assert.Equal("primary", nodes.Value(Row(nodes, 0), "role"));
    }
}
