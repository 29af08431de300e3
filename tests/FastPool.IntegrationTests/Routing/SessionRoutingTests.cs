using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Routing.RoutingSupport;

namespace FastPool.IntegrationTests.Routing;

/// <summary>
/// Session pooling over a real primary and standby: a client keeps one server on the primary and, from its first
/// balanced read, one on the standby; reads run on the standby, writes and explicit transactions on the primary,
/// session settings reach both servers, state that cannot (LISTEN, temporary tables) pins the client to the
/// primary, and both servers are let go when the client leaves.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class SessionRoutingTests
{
    private readonly PostgresFixture _fixture;

    public SessionRoutingTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task A_session_client_reads_on_the_standby_writes_on_the_primary_and_keeps_its_settings_on_both()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await CreateOnPrimaryAsync(primary, standby, "create table if not exists rt_sess (id int primary key)", "rt_sess");
        await primary.PsqlAsync("truncate rt_sess");
        await using var host = StartProxy(primary, [primary, standby], mode: PoolMode.Session);
        await WaitForBalancingAsync(host, 1);
        long before = await SelectCountAsync(host, 1);

        var app = "rt_sess_" + Guid.NewGuid().ToString("N")[..8];
        await using (var conn = new NpgsqlConnection(host.ConnectionString(Database) + ";Application Name=" + app))
        {
            await conn.OpenAsync();
            for (int i = 0; i < 10; i++)
            {
                Assert.True(await ReachesStandbyAsync(conn, "select pg_is_in_recovery()"));
            }

            Assert.True(await SelectCountAsync(host, 1) - before >= 10);

            // One server on each node, both this client's (application_name follows it to both).
            Assert.Equal("1", await primary.PsqlAsync($"select count(*) from pg_stat_activity where application_name = '{app}'"));
            Assert.Equal("1", await standby.PsqlAsync($"select count(*) from pg_stat_activity where application_name = '{app}'"));

            // A session SET reaches both servers: a read on the standby and a statement on the primary see it.
            await ExecAsync(conn, "set statement_timeout = '4321ms'");
            Assert.Equal("4321ms", await ScalarAsync<string>(conn, "show statement_timeout"));
            Assert.Equal("4321ms|true", await ScalarAsync<string>(conn, "select current_setting('statement_timeout') || '|' || pg_is_in_recovery()"));
            Assert.Equal("4321ms|false", await ScalarAsync<string>(conn, "/*NO LOAD BALANCE*/ select current_setting('statement_timeout') || '|' || pg_is_in_recovery()"));

            // Writes go to the primary; read_your_writes finds each row at once; an explicit transaction's write and
            // what follows it run on the primary (its leading reads may run on the standby: SplitTransactionTests).
            for (int id = 0; id < 100; id++)
            {
                Assert.False(await OnStandbyAsync(conn, $"insert into rt_sess values ({id}) returning pg_is_in_recovery()"));
                Assert.Equal(1L, await ScalarAsync<long>(conn, $"select count(*) from rt_sess where id = {id}"));
            }

            await using (var tx = await conn.BeginTransactionAsync())
            {
                Assert.False(await OnStandbyAsync(conn, "insert into rt_sess values (1000) returning pg_is_in_recovery()"));
                Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
                await tx.CommitAsync();
            }

            // Named prepared statements are balanced too, and the settings are still there after all the moves.
            await using var prepared = new NpgsqlCommand("select pg_is_in_recovery(), current_setting('statement_timeout')", conn);
            await prepared.PrepareAsync();
            await Wait.UntilAsync(
                async () =>
                {
                    await using var reader = await prepared.ExecuteReaderAsync();
                    return await reader.ReadAsync() && reader.GetBoolean(0) && reader.GetString(1) == "4321ms";
                },
                TimeSpan.FromSeconds(30),
                "the prepared read on the standby once it replayed the writes");
            Assert.Equal("1", await primary.PsqlAsync($"select count(*) from pg_stat_activity where application_name = '{app}'"));
            Assert.Equal("1", await standby.PsqlAsync($"select count(*) from pg_stat_activity where application_name = '{app}'"));
        }

        // Both servers were released together (reset, so no longer the client's) when it left.
        await Wait.UntilAsync(
            async () => await primary.PsqlAsync($"select count(*) from pg_stat_activity where application_name = '{app}'") == "0"
                && await standby.PsqlAsync($"select count(*) from pg_stat_activity where application_name = '{app}'") == "0",
            TimeSpan.FromSeconds(10),
            "both of the client's servers released");
        Assert.Equal("101", await primary.PsqlAsync("select count(*) from rt_sess"));
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task Listen_and_temporary_tables_pin_a_session_client_to_the_primary()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await using var host = StartProxy(primary, [primary, standby], mode: PoolMode.Session);
        await WaitForBalancingAsync(host, 1);

        await using (var listener = await OpenAsync(host))
        {
            Assert.True(await ReachesStandbyAsync(listener, "select pg_is_in_recovery()"));
            await ExecAsync(listener, "listen rt_sess_channel");
            Assert.False(await OnStandbyAsync(listener, "select pg_is_in_recovery()"));

            string? payload = null;
            listener.Notification += (_, e) => payload = e.Payload;
            await primary.PsqlAsync("notify rt_sess_channel, 'hello'");
            Assert.True(await listener.WaitAsync(TimeSpan.FromSeconds(10)), "the notification reached the listening client");
            Assert.Equal("hello", payload);
        }

        await using (var conn = await OpenAsync(host))
        {
            Assert.True(await ReachesStandbyAsync(conn, "select pg_is_in_recovery()"));
            await ExecAsync(conn, "create temp table rt_sess_tmp (id int)");
            await ExecAsync(conn, "insert into rt_sess_tmp values (7)");
            Assert.Equal("7|false", await ScalarAsync<string>(conn, "select id || '|' || pg_is_in_recovery() from rt_sess_tmp"));
            Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        }

        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task Named_prepared_reads_are_balanced_in_session_pooling_even_with_max_prepared_statements_0()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await using var host = StartProxy(primary, [primary, standby], mode: PoolMode.Session, configure: c => c with { MaxPreparedStatements = 0 });
        await WaitForBalancingAsync(host, 1);
        await using var conn = await OpenAsync(host);

        // FastPool keeps the statement (it would otherwise pin the session to the primary): prepared on each node
        // that runs it, reads on the standby, writes on the primary.
        await using var read = new NpgsqlCommand("select pg_is_in_recovery()", conn);
        await read.PrepareAsync();
        await using var write = new NpgsqlCommand("select pg_is_in_recovery() from (select txid_current()) t", conn);
        await write.PrepareAsync();
        for (int i = 0; i < 5; i++)
        {
            // After the write, read_your_writes sends the read to the primary until the standby has replayed it: on a
            // loaded machine that takes a moment, so the read is retried; a write never reaches the standby.
            bool onStandby = false;
            for (int attempt = 0; attempt < 20 && !onStandby; attempt++)
            {
                onStandby = (bool)(await read.ExecuteScalarAsync())!;
                if (!onStandby)
                {
                    await Task.Delay(150);
                }
            }

            Assert.True(onStandby);
            Assert.False((bool)(await write.ExecuteScalarAsync())!);
        }

        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }
}
