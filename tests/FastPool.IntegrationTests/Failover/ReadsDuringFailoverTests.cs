using System.Collections.Concurrent;
using System.Diagnostics;
using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using FastPool.Routing.Balancing;
using Npgsql;
using Xunit.Abstractions;
using static FastPool.IntegrationTests.Failover.FailoverChecks;

namespace FastPool.IntegrationTests.Failover;

/// <summary>
/// Load balancing on, a primary and two standbys, a read-only load through FastPool the whole time: the primary
/// is SIGKILLed and a standby promoted, then the standby that is left is SIGKILLed too. No read fails at any point,
/// and writes go on on the promoted standby.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ReadsDuringFailoverTests
{
    private const int Readers = 6;
    private const int Rows = 1000;

    // The write waits through the whole (held) failover: a loaded machine must not turn that wait into an error.
    private static readonly FailoverSettings Generous = FailoverCluster.FastHealthChecks with { FailoverWaitTimeout = TimeSpan.FromSeconds(120) };
    private readonly ITestOutputHelper _output;

    public ReadsDuringFailoverTests(ITestOutputHelper output)
    {
        _output = output;
    }

    /// <summary>
    /// With <paramref name="holdFailover"/>, failover = command and the command waits for the test's go before it
    /// promotes: the failover lasts as long as the test wants, and reads are watched for the whole of it, over
    /// several replication checks that find no primary (delay_threshold set, so they must still measure the delay).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ReadLoad_LosesNoRead_WhileThePrimaryAndThenAStandbyAreKilled_AndWritesMoveToThePromotedStandby(bool holdFailover)
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        var gate = Path.Combine(cluster.Primary.BaseDirectory, "promote-now");
        using (var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3)))
        {
            await cluster.Primary.AddStandbyAsync(cts.Token);
        }

        var standbys = cluster.Primary.Standbys.ToList();
        Assert.Equal(2, standbys.Count);
        await cluster.Primary.PsqlAsync($"CREATE TABLE reads (id int PRIMARY KEY, v int); INSERT INTO reads SELECT g, g * 2 FROM generate_series(1, {Rows}) g; CREATE TABLE writes (id int)");
        var written = await cluster.Primary.PsqlAsync("SELECT pg_current_wal_lsn()");
        foreach (var standby in standbys)
        {
            await Wait.UntilAsync(
                async () => await standby.PsqlAsync($"SELECT pg_last_wal_replay_lsn() >= '{written}'") == "t",
                TimeSpan.FromSeconds(60),
                $"the tables replicated to {standby.Name}");
        }

        await using var proxy = cluster.StartProxy(c => c with
        {
            Databases = [FailoverCluster.Entry("app", [cluster.Primary, .. standbys])],
            FastPool = c.FastPool with
            {
                Routing = c.FastPool.Routing with
                {
                    LoadBalanceMode = true,
                    Policy = LoadBalancePolicyKind.RoundRobin,
                    StatementLevelLoadBalance = true,
                    DelayThresholdBytes = 1L << 30,
                },
                Failover = !holdFailover ? Generous : Generous with
                {
                    Mode = FailoverMode.Command,

                    // Only for the lost primary (%d = %P); a lost standby needs nothing.
                    FailoverCommand = $"[ \"%d\" = \"%P\" ] || exit 0; while [ ! -f {gate} ]; do sleep 0.05; done; "
                        + "psql -X -h %H -p %r -U postgres -d postgres -Atc 'SELECT pg_promote()'",
                },
            },
        });
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        foreach (int id in new[] { 1, 2 })
        {
            await WaitForNodeAsync(proxy, id, "standby", "up");
            await Wait.UntilAsync(
                async () => (await AdminSupport.ShowAsync(proxy.Port, "SHOW POOL_NODES")) is var nodes && nodes.Value(Row(nodes, id), "load_balance_node") == "true",
                TimeSpan.FromSeconds(30),
                $"node {id} takes reads");
        }

        var reads = new ConcurrentQueue<(long Started, long Ended, int Port)>();
        var failures = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, Readers).Select(r => Task.Run(() => ReadAsync(proxy, r, reads, failures, stop.Token))).ToList();
        await Wait.UntilAsync(
            () => Task.FromResult(standbys.All(s => reads.Any(x => x.Port == s.Port)) && reads.Count > 300),
            TimeSpan.FromSeconds(60),
            "reads served by both standbys");
        Assert.DoesNotContain(reads, r => r.Port == cluster.Primary.Port);

        // The primary dies; a write through the same port waits for the promotion and lands on the new primary.
        long killAt = Stopwatch.GetTimestamp();
        await cluster.Primary.KillAsync();
        var write = Task.Run(async () =>
        {
            await using var writer = await proxy.OpenAsync("app");
            await using var insert = new NpgsqlCommand("INSERT INTO writes VALUES (1)", writer);
            return await insert.ExecuteNonQueryAsync();
        });
        if (holdFailover)
        {
            // The failover is under way (the primary is down, the command waits): reads go on on both standbys
            // meanwhile, through several replication checks that reach no primary, and the write waits.
            await WaitForNodeAsync(proxy, 0, "primary", "down");
            long heldAt = Stopwatch.GetTimestamp();
            await Task.Delay(TimeSpan.FromSeconds(3));
            long checkedAt = Stopwatch.GetTimestamp();
            await Wait.UntilAsync(
                () => Task.FromResult(standbys.All(s => reads.Count(r => r.Started > checkedAt && r.Port == s.Port) >= 50)),
                TimeSpan.FromSeconds(60),
                "reads on both standbys while the failover waits");
            Assert.False(write.IsCompleted, "the write did not wait for the new primary");
            Assert.True(failures.IsEmpty, $"{failures.Count} reads failed while the failover waited, e.g.:\n{string.Join('\n', failures.Take(5))}");
            _output.WriteLine($"reads during the held failover: {reads.Count(r => r.Started > heldAt)}");
            await File.WriteAllTextAsync(gate, "go");
        }

        Assert.Equal(1, await write);

        long writtenAt = Stopwatch.GetTimestamp();
        var promotedId = await WaitForPromotionAsync(proxy);
        var promoted = standbys[promotedId - 1];
        var other = standbys[2 - promotedId];
        Assert.Equal("f", await promoted.PsqlAsync("SELECT pg_is_in_recovery()"));
        Assert.Equal("1", await promoted.PsqlAsync("SELECT count(*) FROM writes"));
        await WaitForReadsAsync(reads, writtenAt, 200, "reads after the failover");
        var during = reads.Where(r => r.Started > killAt && r.Ended < writtenAt).GroupBy(r => r.Port).ToDictionary(g => g.Key, g => g.Count());
        _output.WriteLine($"kill to first write acknowledged on the new primary: {Stopwatch.GetElapsedTime(killAt, writtenAt).TotalMilliseconds:0} ms; "
            + $"reads completed meanwhile by server port: {string.Join(", ", during.Select(d => $"{d.Key}: {d.Value}"))}");

        // The standby that is left dies too: its reads in flight are sent again, later ones go to the new primary.
        await other.KillAsync();
        await WaitForNodeAsync(proxy, 3 - promotedId, "standby", "down");
        long downAt = Stopwatch.GetTimestamp();
        await WaitForReadsAsync(reads, downAt, 200, "reads after the standby was detached");
        stop.Cancel();
        await Task.WhenAll(load);

        foreach (var line in proxy.Logs.Where(l => l.Contains("node ", StringComparison.Ordinal)))
        {
            _output.WriteLine(line);
        }

        Assert.True(failures.IsEmpty, $"{failures.Count} reads failed, e.g.:\n{string.Join('\n', failures.Take(5))}");
        Assert.True(reads.Any(r => r.Port == other.Port), "the killed standby served reads before it died");
        var late = reads.Where(r => r.Started > downAt).ToList();
        Assert.All(late, r => Assert.Equal(promoted.Port, r.Port));
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    /// <summary>Which standby (node 1 or 2) SHOW POOL_NODES shows as the primary, once one is.</summary>
    private static async Task<int> WaitForPromotionAsync(ProxyHost proxy)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var nodes = await AdminSupport.ShowAsync(proxy.Port, "SHOW POOL_NODES");
            foreach (int id in new[] { 1, 2 })
            {
                if (nodes.Value(Row(nodes, id), "role") == "primary" && nodes.Value(Row(nodes, id), "status") == "up")
                {
                    return id;
                }
            }

            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"no standby shown as the primary after 60 s:\n{nodes}\n{string.Join('\n', proxy.Logs)}");
            await Task.Delay(50);
        }
    }

    private static Task WaitForReadsAsync(ConcurrentQueue<(long Started, long Ended, int Port)> reads, long since, int count, string what) =>
        Wait.UntilAsync(() => Task.FromResult(reads.Count(r => r.Started > since) >= count), TimeSpan.FromSeconds(60), what);

    /// <summary>One reader: its own client through FastPool, one autocommit read after another; each checks its row.</summary>
    private static async Task ReadAsync(ProxyHost proxy, int reader, ConcurrentQueue<(long, long, int)> reads, ConcurrentQueue<string> failures, CancellationToken stop)
    {
        var random = new Random(reader);
        NpgsqlConnection? conn = null;
        while (!stop.IsCancellationRequested)
        {
            int id = random.Next(1, Rows + 1);
            long started = Stopwatch.GetTimestamp();
            try
            {
                if (conn is null)
                {
                    conn = new NpgsqlConnection(proxy.ConnectionString("app"));
                    await conn.OpenAsync(CancellationToken.None);
                }

                await using var cmd = new NpgsqlCommand("SELECT v, current_setting('port')::int FROM reads WHERE id = $1", conn);
                cmd.Parameters.AddWithValue(id);
                await using var result = await cmd.ExecuteReaderAsync(CancellationToken.None);
                if (!await result.ReadAsync(CancellationToken.None) || result.GetInt32(0) != id * 2)
                {
                    failures.Enqueue($"reader {reader}: wrong answer for id {id}");
                    continue;
                }

                reads.Enqueue((started, Stopwatch.GetTimestamp(), result.GetInt32(1)));
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
            {
                failures.Enqueue($"reader {reader}: {ex.GetType().Name}: {ex.Message}");
                if (conn is not null)
                {
                    await conn.DisposeAsync();
                    conn = null;
                }
            }
        }

        if (conn is not null)
        {
            await conn.DisposeAsync();
        }
    }
}
