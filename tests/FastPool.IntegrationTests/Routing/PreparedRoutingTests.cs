using System.Text.RegularExpressions;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using FastPool.IntegrationTests.Resilience;
using Npgsql;
using static FastPool.IntegrationTests.Routing.RoutingSupport;

namespace FastPool.IntegrationTests.Routing;

/// <summary>
/// Named prepared statements (Npgsql's Prepare, pgbench -M prepared) in transaction pooling over a primary and a
/// standby: a statement is classified once, when it is parsed, and every execution of a read-only one is balanced
/// like an unnamed statement (FastPool prepares it on the standby first); writes still go to the primary.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PreparedRoutingTests
{
    private readonly PostgresFixture _fixture;

    public PreparedRoutingTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Named_prepared_reads_run_on_the_standby_and_prepared_writes_on_the_primary()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await CreateOnPrimaryAsync(primary, standby, "create table if not exists rt_prep (id int primary key)", "rt_prep");
        await primary.PsqlAsync("truncate rt_prep");
        await using var host = StartProxy(primary, [primary, standby]);
        await WaitForBalancingAsync(host, 1);
        long before = await SelectCountAsync(host, 1);

        await using var conn = await OpenAsync(host);
        await using var read = new NpgsqlCommand("select pg_is_in_recovery(), $1::int + 1", conn);
        var readArg = new NpgsqlParameter<int> { TypedValue = 0 };
        read.Parameters.Add(readArg);
        await read.PrepareAsync();
        Assert.True(read.IsPrepared);
        for (int i = 0; i < 20; i++)
        {
            readArg.TypedValue = i;
            await using var reader = await read.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.True(reader.GetBoolean(0), $"execution {i} of the prepared read ran on the primary");
            Assert.Equal(i + 1, reader.GetInt32(1));
        }

        Assert.True(await SelectCountAsync(host, 1) - before >= 20);

        // Prepared writes go to the primary, and read_your_writes sends the prepared read of each row where it is.
        await using var insert = new NpgsqlCommand("insert into rt_prep values ($1) returning pg_is_in_recovery()", conn);
        var insertArg = new NpgsqlParameter<int> { TypedValue = 0 };
        insert.Parameters.Add(insertArg);
        await insert.PrepareAsync();
        await using var count = new NpgsqlCommand("select count(*) from rt_prep where id = $1", conn);
        var countArg = new NpgsqlParameter<int> { TypedValue = 0 };
        count.Parameters.Add(countArg);
        await count.PrepareAsync();
        int missed = 0;
        for (int id = 0; id < 200; id++)
        {
            insertArg.TypedValue = id;
            Assert.False((bool)(await insert.ExecuteScalarAsync())!);
            countArg.TypedValue = id;
            if ((long)(await count.ExecuteScalarAsync())! != 1)
            {
                missed++;
            }
        }

        Assert.Equal(0, missed);

        // Once the standby has replayed the writes, the prepared read is back on it.
        await Wait.UntilAsync(
            async () =>
            {
                readArg.TypedValue = 1;
                await using var reader = await read.ExecuteReaderAsync();
                return await reader.ReadAsync() && reader.GetBoolean(0);
            },
            TimeSpan.FromSeconds(30),
            "the prepared read back on the standby");
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task Pgbench_prepared_select_only_runs_on_the_standby_and_tpcb_prepared_loses_nothing_in_transaction_and_session_pooling()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        var database = ProtocolTestSupport.UniqueName("rt_pbench");
        await primary.PsqlAsync($"create database {database}");
        try
        {
            var init = await ProtocolTestSupport.RunToolAsync(
                "pgbench",
                ["-h", primary.Host, "-p", ProtocolTestSupport.Invariant(primary.Port), "-U", "postgres", "-i", "-s", "1", "-q", database],
                TimeSpan.FromSeconds(120));
            Assert.True(init.ExitCode == 0, init.ToString());
            await Wait.UntilAsync(
                async () => await standby.PsqlAsync("select count(*) from pgbench_accounts", database) == "100000",
                TimeSpan.FromSeconds(60),
                "pgbench tables on the standby");

            await using var host = StartProxy(primary, [primary, standby], dbName: database);
            await WaitForBalancingAsync(host, 1);
            long primaryBefore = await SelectCountAsync(host, 0);
            long standbyBefore = await SelectCountAsync(host, 1);

            var selectOnly = await PgbenchAsync(host, "-S", "-M", "prepared", "-c", "2", "-j", "2", "-t", "200");
            Assert.True(await SelectCountAsync(host, 1) - standbyBefore >= 400, "pgbench -S -M prepared reads on the standby");
            Assert.Equal(primaryBefore, await SelectCountAsync(host, 0));

            // TPC-B: explicit transactions of prepared writes and reads, on the primary.
            await PgbenchAsync(host, "-M", "prepared", "-c", "2", "-j", "2", "-t", "50");
            ProxyChecks.AssertNoUnexpectedErrors(host);

            // The same in session pooling, where each client keeps a server on each node.
            await using var session = StartProxy(primary, [primary, standby], mode: FastPool.Proxy.Configuration.PoolMode.Session, dbName: database);
            await WaitForBalancingAsync(session, 1);
            standbyBefore = await SelectCountAsync(session, 1);
            await PgbenchAsync(session, "-S", "-M", "prepared", "-c", "2", "-j", "2", "-t", "200");
            Assert.True(await SelectCountAsync(session, 1) - standbyBefore >= 400, "session-pooled pgbench -S -M prepared reads on the standby");
            await PgbenchAsync(session, "-M", "prepared", "-c", "2", "-j", "2", "-t", "50");
            await PgbenchAsync(session, "-S", "-M", "extended", "-c", "2", "-j", "2", "-t", "100");
            ProxyChecks.AssertNoUnexpectedErrors(session);
        }
        finally
        {
            await primary.PsqlAsync($"drop database if exists {database} with (force)");
        }
    }

    /// <summary>Runs pgbench through the proxy and asserts it finished with no failed transaction.</summary>
    private static async Task<ToolResult> PgbenchAsync(ProxyHost host, params string[] args)
    {
        var result = await ProtocolTestSupport.RunToolAsync(
            "pgbench",
            ["-h", "127.0.0.1", "-p", ProtocolTestSupport.Invariant(host.Port), "-U", "postgres", "-n", .. args, Database],
            TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, result.ToString());
        var failed = Regex.Match(result.StandardOutput, @"number of failed transactions: (\d+)");
        Assert.True(failed.Success, result.ToString());
        Assert.Equal("0", failed.Groups[1].Value);
        return result;
    }
}
