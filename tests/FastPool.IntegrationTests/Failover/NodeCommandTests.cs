using System.Collections.Concurrent;
using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using Npgsql;
using Xunit.Abstractions;
using static FastPool.IntegrationTests.Failover.FailoverChecks;

namespace FastPool.IntegrationTests.Failover;

/// <summary>The operator's node commands on the admin console: PROMOTE NODE (switchover), DETACH/ATTACH NODE, RECOVER NODE.</summary>
[Collection(PostgresCollection.Name)]
public sealed class NodeCommandTests
{
    private readonly PostgresFixture _fixture;
    private readonly ITestOutputHelper _output;

    public NodeCommandTests(PostgresFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
    }

    [Fact]
    public async Task PromoteNode_SwitchesOverUnderWriteLoad_WithoutLosingACommit()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        await cluster.Primary.PsqlAsync("CREATE TABLE acked (writer int, seq int, PRIMARY KEY (writer, seq))");
        await using var proxy = cluster.StartProxy();
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");

        var acknowledged = new ConcurrentBag<(int Writer, int Seq)>();
        int failures = 0;
        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            await using var conn = await proxy.OpenAsync("app");
            for (int seq = 1; !stop.IsCancellationRequested; seq++)
            {
                try
                {
                    await using var cmd = new NpgsqlCommand("INSERT INTO acked VALUES ($1, $2)", conn);
                    cmd.Parameters.AddWithValue(w);
                    cmd.Parameters.AddWithValue(seq);
                    await cmd.ExecuteNonQueryAsync();
                    acknowledged.Add((w, seq));
                }
                catch (NpgsqlException)
                {
                    Interlocked.Increment(ref failures);
                    return;
                }
            }
        })).ToList();
        await Wait.UntilAsync(() => Task.FromResult(acknowledged.Count > 200), TimeSpan.FromSeconds(30), "the write load is running");

        await AdminSupport.RunAsync(proxy.Port, "PROMOTE NODE 1");
        int atSwitch = acknowledged.Count;
        await Wait.UntilAsync(() => Task.FromResult(acknowledged.Count > atSwitch + 100), TimeSpan.FromSeconds(30), "writes continue after the switchover");
        stop.Cancel();
        await Task.WhenAll(load);

        var onNewPrimary = (await cluster.Standby.PsqlAsync("SELECT writer || ':' || seq FROM acked")).Split('\n').ToHashSet();
        var lost = acknowledged.Where(a => !onNewPrimary.Contains($"{a.Writer}:{a.Seq}")).ToList();
        _output.WriteLine($"{acknowledged.Count} inserts acknowledged, {lost.Count} lost, {failures} failed");
        Assert.Empty(lost);
        Assert.Equal(0, failures);
        Assert.Equal("f", await cluster.Standby.PsqlAsync("SELECT pg_is_in_recovery()"));
        var nodes = await AdminSupport.ShowAsync(proxy.Port, "SHOW POOL_NODES");
        Assert.Equal("primary", nodes.Value(Row(nodes, 1), "role"));
        Assert.Equal("up", nodes.Value(Row(nodes, 1), "status"));
        Assert.Equal("needs_recovery", nodes.Value(Row(nodes, 0), "status"));
    }

    [Fact]
    public async Task DetachAndAttachNode_TakeAStandbyOutAndBackIn()
    {
        var standby = await _fixture.GetStandbyAsync();
        await using var proxy = AdminSupport.StartProxy(_fixture.Primary, c => c with
        {
            Databases = [FailoverCluster.Entry(_fixture.Primary, standby)],
            FastPool = c.FastPool with { SrCheckPeriod = TimeSpan.FromMilliseconds(300), Failover = FailoverCluster.FastHealthChecks },
        });
        await WaitForNodeAsync(proxy, 1, "standby", "up");

        await AdminSupport.RunAsync(proxy.Port, "DETACH NODE 1");
        var nodes = await AdminSupport.ShowAsync(proxy.Port, "SHOW POOL_NODES");
        Assert.Equal("detached", nodes.Value(Row(nodes, 1), "status"));

        // Health checks keep seeing it fine, and it stays out until an operator says otherwise.
        await Task.Delay(TimeSpan.FromSeconds(2));
        await WaitForNodeAsync(proxy, 1, "standby", "detached");
        var again = await AdminSupport.PsqlAsync(proxy.Port, "DETACH NODE 1");
        Assert.Contains("already detached", again.StandardError, StringComparison.Ordinal);

        await AdminSupport.RunAsync(proxy.Port, "ATTACH NODE 1");
        await WaitForNodeAsync(proxy, 1, "standby", "up");

        // A node id that does not exist is named as such.
        var bad = await AdminSupport.PsqlAsync(proxy.Port, "ATTACH NODE 7");
        Assert.Contains("has no node 7", bad.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RecoverNode_RebuildsTheFencedOldPrimaryAsAStandby_AndAttachesIt()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        var script = Path.Combine(cluster.Primary.BaseDirectory, "recover.sh");
        string asPostgres = Environment.UserName == "root" ? "runuser -u postgres --" : string.Empty;
        string bin = cluster.Primary.BinDirectory;
        await File.WriteAllTextAsync(script, $"""
            set -e
            D=$1; H=$2; R=$3; P=$4
            {asPostgres} {bin}/pg_ctl -D $D -m immediate -w stop || true
            rm -rf $D
            {asPostgres} {bin}/pg_basebackup -h $H -p $R -U postgres -D $D -R -c fast -X stream --no-sync
            echo "port = $P" >> $D/postgresql.auto.conf
            {asPostgres} {bin}/pg_ctl -D $D -l $D.rebuilt.log -w start
            """);
        await using var proxy = cluster.StartProxy(c => c with
        {
            FastPool = c.FastPool with
            {
                Failover = FailoverCluster.FastHealthChecks with
                {
                    RecoveryCommand = $"sh {script} %D %H %r %p",
                    DataDirectories = [cluster.Primary.DataDirectory, cluster.Standby.DataDirectory],
                },
            },
        });
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");

        await cluster.Primary.KillAsync();
        await WaitForNodeAsync(proxy, 1, "primary", "up");
        await cluster.Primary.StartAsync();
        await WaitForNodeAsync(proxy, 0, "primary", "needs_recovery");
        await using (var conn = await proxy.OpenAsync("app"))
        {
            await using var create = new NpgsqlCommand("CREATE TABLE written_after_failover AS SELECT 42 AS v", conn);
            await create.ExecuteNonQueryAsync();
        }

        await AdminSupport.RunAsync(proxy.Port, "RECOVER NODE 0");

        var nodes = await WaitForNodeAsync(proxy, 0, "standby", "up");
        Assert.Contains("rebuilt", nodes.Value(Row(nodes, 0), "last_change_reason"), StringComparison.Ordinal);
        Assert.Equal("t", await cluster.Primary.PsqlAsync("SELECT pg_is_in_recovery()"));
        await Wait.UntilAsync(
            async () => await cluster.Primary.PsqlAsync("SELECT count(*) FROM pg_class WHERE relname = 'written_after_failover'") == "1",
            TimeSpan.FromSeconds(30),
            "the rebuilt node has what was written after the failover");
        Assert.Equal("42", await cluster.Primary.PsqlAsync("SELECT v FROM written_after_failover"));
    }

    /// <summary>Without recovery_command, a local node whose data directory is configured is rebuilt with pg_basebackup by FastPool itself.</summary>
    [Fact]
    public async Task RecoverNode_WithoutRecoveryCommand_RebuildsALocalNodeWithPgBasebackup()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        await using var proxy = cluster.StartProxy(c => c with
        {
            FastPool = c.FastPool with
            {
                Failover = FailoverCluster.FastHealthChecks with { DataDirectories = [cluster.Primary.DataDirectory, cluster.Standby.DataDirectory] },
            },
        });
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");
        await cluster.Primary.KillAsync();
        await WaitForNodeAsync(proxy, 1, "primary", "up");
        await using (var conn = await proxy.OpenAsync("app"))
        {
            await using var create = new NpgsqlCommand("CREATE TABLE written_after_failover AS SELECT 7 AS v", conn);
            await create.ExecuteNonQueryAsync();
        }

        // The old primary is down (not restarted): RECOVER NODE rebuilds and starts it.
        await AdminSupport.RunAsync(proxy.Port, "RECOVER NODE 0");

        await WaitForNodeAsync(proxy, 0, "standby", "up");
        Assert.Equal("t", await cluster.Primary.PsqlAsync("SELECT pg_is_in_recovery()"));
        await Wait.UntilAsync(
            async () => await cluster.Primary.PsqlAsync("SELECT count(*) FROM pg_class WHERE relname = 'written_after_failover'") == "1",
            TimeSpan.FromSeconds(30),
            "the rebuilt node has what was written after the failover");
    }
}
