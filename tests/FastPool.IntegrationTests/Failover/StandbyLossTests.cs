using System.Diagnostics;
using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;
using static FastPool.IntegrationTests.Failover.FailoverChecks;

namespace FastPool.IntegrationTests.Failover;

/// <summary>Losing a standby detaches it and nothing else: no promotion, no failed client transaction.</summary>
[Collection(PostgresCollection.Name)]
public sealed class StandbyLossTests
{
    [Fact]
    public async Task StandbyKilledUnderLoad_IsDetached_WithoutFailover_AndNoClientTransactionFails()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        await using var proxy = cluster.StartProxy();
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");

        int done = 0;
        int failed = 0;
        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            await using var conn = await proxy.OpenAsync("app");
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await using var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_class", conn);
                    await cmd.ExecuteScalarAsync();
                    Interlocked.Increment(ref done);
                }
                catch (NpgsqlException)
                {
                    Interlocked.Increment(ref failed);
                }
            }
        })).ToList();

        await cluster.Standby.KillAsync();
        var nodes = await WaitForNodeAsync(proxy, 1, "standby", "down");
        int before = Volatile.Read(ref done);
        var sw = Stopwatch.StartNew();
        while (Volatile.Read(ref done) < before + 100 && sw.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(20);
        }

        stop.Cancel();
        await Task.WhenAll(load);

        Assert.Equal(0, failed);
        Assert.True(done > before, "the load went on after the standby was detached");
        Assert.Equal("primary", nodes.Value(Row(nodes, 0), "role"));
        Assert.Equal("up", nodes.Value(Row(nodes, 0), "status"));
        Assert.Contains("refused", nodes.Value(Row(nodes, 1), "last_change_reason"), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(proxy.Logs, l => l.Contains("failover from", StringComparison.Ordinal));
    }
}
