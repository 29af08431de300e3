using System.Globalization;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using FastPool.IntegrationTests.Resilience;
using FastPool.Sandbox;
using Npgsql;
using static FastPool.IntegrationTests.Admin.AdminSupport;
using static FastPool.IntegrationTests.Routing.RoutingSupport;

namespace FastPool.IntegrationTests.Routing;

/// <summary>
/// A standby that replays late (recovery_min_apply_delay) or not at all: read_your_writes keeps a client's reads
/// off it until it has the client's writes, delay thresholds keep everyone's reads off it, and a stopped standby
/// costs no client an error. Each test has a standby of its own, since it delays or stops it.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ReplicationDelayTests
{
    private readonly PostgresFixture _fixture;

    public ReplicationDelayTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Read_your_writes_never_misses_a_committed_row_on_a_delayed_standby()
    {
        var primary = _fixture.Primary;
        await using var standby = await AddOwnStandbyAsync(primary);
        await CreateOnPrimaryAsync(primary, standby, "create table if not exists rt_ryw (id int primary key)", "rt_ryw");
        await DelayAsync(standby, "1500ms");

        // Control: without read_your_writes the row written a moment ago is missing on the delayed standby.
        await using (var careless = StartProxy(primary, [primary, standby], r => r with { ReadYourWrites = false }))
        {
            await WaitForBalancingAsync(careless, 1);
            await using var conn = await OpenAsync(careless);
            int missed = await InsertThenReadAsync(conn, first: 1_000_000, count: 20);
            Assert.Equal(20, missed);
        }

        await using var host = StartProxy(primary, [primary, standby]);
        await WaitForBalancingAsync(host, 1);
        long standbyReadsBefore = await SelectCountAsync(host, 1);
        await using (var conn = await OpenAsync(host))
        {
            Assert.Equal(0, await InsertThenReadAsync(conn, first: 0, count: 1000));

            // Not pinned to the primary for longer than replication needs: once the standby has replayed the last
            // write (the delay, plus a check), this client's reads go to it again.
            await Wait.UntilAsync(() => OnStandbyAsync(conn, "select pg_is_in_recovery()"), TimeSpan.FromSeconds(30), "reads back on the standby");
            Assert.Equal(1L, await ScalarAsync<long>(conn, "select count(*) from rt_ryw where id = 999"));
        }

        // The other clients were never held back: a fresh client reads from the standby at once.
        await using (var other = await OpenAsync(host))
        {
            Assert.True(await OnStandbyAsync(other, "select pg_is_in_recovery()"));
        }

        Assert.True(await SelectCountAsync(host, 1) > standbyReadsBefore);
        Assert.True(await SelectCountAsync(host, 0) >= 1000);
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task A_standby_lagging_beyond_delay_threshold_gets_no_reads_until_it_catches_up()
    {
        var primary = _fixture.Primary;
        await using var standby = await AddOwnStandbyAsync(primary);
        await CreateOnPrimaryAsync(primary, standby, "create table if not exists rt_lag (id int)", "rt_lag");
        await using var host = StartProxy(primary, [primary, standby], r => r with { DelayThresholdBytes = 1024, ReadYourWrites = false });
        await WaitForBalancingAsync(host, 1);
        await using var conn = await OpenAsync(host);
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));

        // Stop replay on the standby and write more WAL than the threshold on the primary.
        await standby.PsqlAsync("select pg_wal_replay_pause()");
        try
        {
            await primary.PsqlAsync("insert into rt_lag select generate_series(1, 2000)");
            await Wait.UntilAsync(
                async () =>
                {
                    var nodes = await ShowAsync(host.Port, "SHOW POOL_NODES");
                    var row = NodeRow(nodes, 1);
                    return nodes.Value(row, "load_balance_node") == "false"
                        && long.Parse(nodes.Value(row, "replication_delay"), CultureInfo.InvariantCulture) > 1024;
                },
                TimeSpan.FromSeconds(30),
                "the lagging standby out of balancing");
            for (int i = 0; i < 10; i++)
            {
                Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
            }
        }
        finally
        {
            await standby.PsqlAsync("select pg_wal_replay_resume()");
        }

        await Wait.UntilAsync(() => OnStandbyAsync(conn, "select pg_is_in_recovery()"), TimeSpan.FromSeconds(30), "reads back on the caught-up standby");
    }

    [Fact]
    public async Task Reads_meant_for_a_stopped_standby_go_elsewhere_without_an_error()
    {
        var primary = _fixture.Primary;
        var shared = await _fixture.GetStandbyAsync();
        await using var doomed = await AddOwnStandbyAsync(primary);

        // Three nodes, round robin per transaction: reads alternate between the two standbys. Checks are slow here,
        // so the reads after the stop find the node still marked up.
        await using var host = StartProxy(
            primary,
            [primary, shared, doomed],
            r => r with { Policy = FastPool.Routing.Balancing.LoadBalancePolicyKind.RoundRobin, StatementLevelLoadBalance = true },
            srCheckPeriod: TimeSpan.FromMinutes(5));
        await WaitForBalancingAsync(host, 1, 2);
        await using var conn = await OpenAsync(host);
        for (int i = 0; i < 20; i++)
        {
            Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        }

        Assert.InRange(await SelectCountAsync(host, 1), 9, 11);
        Assert.InRange(await SelectCountAsync(host, 2), 9, 11);

        // Stopped (as by a crash) long before the next check: the reads that would have gone there still succeed.
        await doomed.StopAsync(immediate: true);
        for (int i = 0; i < 50; i++)
        {
            await using var fresh = await OpenAsync(host);
            Assert.True(await OnStandbyAsync(fresh, "select pg_is_in_recovery()"));
        }

        var nodes = await ShowAsync(host.Port, "SHOW POOL_NODES");
        Assert.Equal("down", nodes.Value(NodeRow(nodes, 2), "status"));
        // The client's failed connect made the health checker probe the node at once; the refusal took it out.
        Assert.StartsWith("health check: could not connect", nodes.Value(NodeRow(nodes, 2), "last_change_reason"), StringComparison.Ordinal);
        Assert.Equal("false", nodes.Value(NodeRow(nodes, 2), "load_balance_node"));
        Assert.True(await SelectCountAsync(host, 1) >= 10 + 49);
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    /// <summary>The standby goes down by an immediate shutdown (its backends say 57P01 first) or by kill -9 (sockets just drop).</summary>
    [Theory]
    [InlineData("simple", false)]
    [InlineData("extended", true)]
    [InlineData("prepared", false)]
    public async Task Pgbench_select_only_loses_no_transaction_when_a_standby_stops_under_load(string mode, bool kill)
    {
        var primary = _fixture.Primary;
        var shared = await _fixture.GetStandbyAsync();
        var database = ProtocolTestSupport.UniqueName("rt_bench");
        await primary.PsqlAsync($"create database {database}");
        try
        {
            var init = await ProtocolTestSupport.RunToolAsync(
                "pgbench",
                ["-h", primary.Host, "-p", ProtocolTestSupport.Invariant(primary.Port), "-U", "postgres", "-i", "-s", "1", "-q", database],
                TimeSpan.FromSeconds(120));
            Assert.True(init.ExitCode == 0, init.ToString());
            await using var doomed = await AddOwnStandbyAsync(primary);
            await Wait.UntilAsync(
                async () => await shared.PsqlAsync("select count(*) from pgbench_accounts", database) == "100000",
                TimeSpan.FromSeconds(60),
                "pgbench tables on the shared standby");

            // Checks are slow here: the reads in flight on the stopped standby, and those that follow before a check,
            // find it still marked up.
            await using var host = StartProxy(
                primary,
                [primary, shared, doomed],
                r => r with { Policy = FastPool.Routing.Balancing.LoadBalancePolicyKind.RoundRobin, StatementLevelLoadBalance = true },
                srCheckPeriod: TimeSpan.FromMinutes(5),
                dbName: database);
            await WaitForBalancingAsync(host, 1, 2);

            var run = ProtocolTestSupport.RunToolAsync(
                "pgbench",
                ["-h", "127.0.0.1", "-p", ProtocolTestSupport.Invariant(host.Port), "-U", "postgres", "-n", "-S", "-M", mode, "-c", "8", "-j", "2", "-T", "6", Database],
                TimeSpan.FromSeconds(120));
            await Task.Delay(TimeSpan.FromSeconds(2));
            if (kill)
            {
                await doomed.KillAsync();
            }
            else
            {
                await doomed.StopAsync(immediate: true);
            }

            var result = await run;

            Assert.True(result.ExitCode == 0, result + Environment.NewLine + string.Join(Environment.NewLine, host.Logs.Where(l => !l.Contains("login attempt", StringComparison.Ordinal) && !l.Contains("closing because", StringComparison.Ordinal)).TakeLast(60)));
            var failed = System.Text.RegularExpressions.Regex.Match(result.StandardOutput, @"number of failed transactions: (\d+)");
            Assert.True(failed.Success, result.ToString());
            Assert.Equal("0", failed.Groups[1].Value);
            var nodes = await ShowAsync(host.Port, "SHOW POOL_NODES");
            Assert.Equal("down", nodes.Value(NodeRow(nodes, 2), "status"));
            Assert.True(await SelectCountAsync(host, 2) > 0, "the stopped standby served reads before it stopped");
            Assert.True(await SelectCountAsync(host, 1) > await SelectCountAsync(host, 2), "the other standby took its reads");
            ProxyChecks.AssertNoUnexpectedErrors(host);
        }
        finally
        {
            await primary.PsqlAsync($"drop database if exists {database} with (force)");
        }
    }

    /// <summary>Inserts rows one by one, reading each back at once; returns how many reads did not see their row.</summary>
    private static async Task<int> InsertThenReadAsync(NpgsqlConnection conn, int first, int count)
    {
        int missed = 0;
        for (int id = first; id < first + count; id++)
        {
            await using (var insert = new NpgsqlCommand("insert into rt_ryw values ($1)", conn))
            {
                insert.Parameters.AddWithValue(id);
                await insert.ExecuteNonQueryAsync();
            }

            await using var read = new NpgsqlCommand("select count(*) from rt_ryw where id = $1", conn);
            read.Parameters.AddWithValue(id);
            if ((long)(await read.ExecuteScalarAsync())! != 1)
            {
                missed++;
            }
        }

        return missed;
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>recovery_min_apply_delay (PostgreSQL docs 20.6.3) on a standby, applied with a reload.</summary>
    private static async Task DelayAsync(PgCluster standby, string delay)
    {
        await standby.PsqlAsync($"alter system set recovery_min_apply_delay = '{delay}'");
        await standby.PsqlAsync("select pg_reload_conf()");
        await Wait.UntilAsync(async () => await standby.PsqlAsync("show recovery_min_apply_delay") != "0", TimeSpan.FromSeconds(10), "the delay in effect");
    }
}
