using System.Collections.Concurrent;
using System.Diagnostics;
using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using Npgsql;
using Xunit.Abstractions;
using static FastPool.IntegrationTests.Failover.FailoverChecks;

namespace FastPool.IntegrationTests.Failover;

/// <summary>
/// The primary's postmaster and all its backends are SIGKILLed under a write load: FastPool promotes the
/// synchronous standby, every acknowledged insert is on it, and clients carry on through the same port.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PrimaryFailoverTests
{
    private const int Writers = 4;
    private readonly ITestOutputHelper _output;

    public PrimaryFailoverTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task PrimaryKilledUnderWriteLoad_NoAcknowledgedInsertLost_AndWritesContinueOnThePromotedStandby()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: true);
        await cluster.Primary.PsqlAsync("CREATE TABLE acked (writer int, seq int, PRIMARY KEY (writer, seq))");
        await using var proxy = cluster.StartProxy();
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");

        // A transaction-mode client that is idle between transactions when the primary dies.
        await using var idle = new NpgsqlConnection(proxy.ConnectionString("app"));
        await idle.OpenAsync();
        Assert.Equal(cluster.Primary.Port, await ServerPortAsync(idle));

        var acknowledged = new ConcurrentBag<(int Writer, int Seq, long StartedAt, long AckedAt)>();
        int failures = 0;
        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, Writers).Select(w => Task.Run(() => WriteAsync(proxy, w, acknowledged, () => Interlocked.Increment(ref failures), stop.Token))).ToList();
        await Wait.UntilAsync(() => Task.FromResult(acknowledged.Count > 200), TimeSpan.FromSeconds(30), "the write load is running");

        long killAt = Stopwatch.GetTimestamp();
        await cluster.Primary.KillAsync();
        long killed = Stopwatch.GetTimestamp();

        // Writes go on through the same FastPool port; wait for a few that started after the primary was gone.
        await Wait.UntilAsync(() => Task.FromResult(acknowledged.Count(a => a.StartedAt > killed) >= 20), TimeSpan.FromSeconds(60), "writes succeed after the kill");
        stop.Cancel();
        await Task.WhenAll(load);

        var firstAfter = acknowledged.Where(a => a.StartedAt > killed).Min(a => a.AckedAt);
        _output.WriteLine($"kill -9 to first acknowledged write that started after the kill: {Stopwatch.GetElapsedTime(killAt, firstAfter).TotalMilliseconds:0} ms "
            + $"(the kill itself took {Stopwatch.GetElapsedTime(killAt, killed).TotalMilliseconds:0} ms); {failures} writes failed, {acknowledged.Count} acknowledged");
        foreach (var line in proxy.Logs.Where(l => l.Contains("node ", StringComparison.Ordinal)))
        {
            _output.WriteLine(line);
        }

        // Every acknowledged insert is on the promoted standby.
        var rows = new HashSet<(int, int)>();
        await using (var direct = new NpgsqlConnection(Backend.DirectConnectionString(cluster.Standby)))
        {
            await direct.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT writer, seq FROM acked", direct);
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows.Add((reader.GetInt32(0), reader.GetInt32(1)));
            }
        }

        var lost = acknowledged.Where(a => !rows.Contains((a.Writer, a.Seq))).ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} acknowledged inserts are missing on the new primary, e.g. {string.Join(", ", lost.Take(5))}");
        Assert.Equal("f", await cluster.Standby.PsqlAsync("SELECT pg_is_in_recovery()"));

        // The idle client continues on the new primary: same connection, no error, a write that lands there.
        Assert.Equal(cluster.Standby.Port, await ServerPortAsync(idle));
        await using (var insert = new NpgsqlCommand("INSERT INTO acked VALUES (-1, 1)", idle))
        {
            Assert.Equal(1, await insert.ExecuteNonQueryAsync());
        }

        Assert.Equal("1", await cluster.Standby.PsqlAsync("SELECT count(*) FROM acked WHERE writer = -1"));

        var nodes = await WaitForNodeAsync(proxy, 1, "primary", "up");
        Assert.Equal("down", nodes.Value(Row(nodes, 0), "status"));
        Assert.Contains("refused", nodes.Value(Row(nodes, 0), "last_change_reason"), StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>One writer: its own client through FastPool, one autocommit insert after another; a failed one reconnects.</summary>
    private static async Task WriteAsync(ProxyHost proxy, int writer, ConcurrentBag<(int, int, long, long)> acknowledged, Action failed, CancellationToken stop)
    {
        int seq = 0;
        NpgsqlConnection? conn = null;
        while (!stop.IsCancellationRequested)
        {
            seq++;
            long started = Stopwatch.GetTimestamp();
            try
            {
                if (conn is null)
                {
                    conn = new NpgsqlConnection(proxy.ConnectionString("app"));
                    await conn.OpenAsync(CancellationToken.None);
                }

                await using var cmd = new NpgsqlCommand("INSERT INTO acked VALUES ($1, $2)", conn);
                cmd.Parameters.AddWithValue(writer);
                cmd.Parameters.AddWithValue(seq);
                await cmd.ExecuteNonQueryAsync(CancellationToken.None);
                acknowledged.Add((writer, seq, started, Stopwatch.GetTimestamp()));
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
            {
                // Outcome unknown (it may have committed): not counted as acknowledged, and never retried with the same key.
                failed();
                if (conn is not null)
                {
                    await conn.DisposeAsync();
                    conn = null;
                }

                await Task.Delay(10, CancellationToken.None);
            }
        }

        if (conn is not null)
        {
            await conn.DisposeAsync();
        }
    }
}
