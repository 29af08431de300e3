using System.Globalization;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using FastPool.Sandbox;
using RawPgClient = FastPool.IntegrationTests.Resilience.RawPgClient;
using Npgsql;
using static FastPool.IntegrationTests.Routing.RoutingSupport;

namespace FastPool.IntegrationTests.Routing;

/// <summary>
/// Explicit transactions over a real primary and standby (disable_load_balance_on_write = transaction): a READ
/// COMMITTED transaction's reads run on the standby until its first write, which moves it to the primary; errors
/// abort it as PostgreSQL would; snapshot transactions run on the primary; no server is left inside a transaction.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class SplitTransactionTests
{
    private readonly PostgresFixture _fixture;

    public SplitTransactionTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Theory]
    [InlineData(PoolMode.Transaction)]
    [InlineData(PoolMode.Session)]
    public async Task Leading_reads_of_a_transaction_run_on_the_standby_and_its_writes_on_the_primary(PoolMode mode)
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        string table = "rt_tx_" + mode.ToString().ToLowerInvariant();
        await CreateOnPrimaryAsync(primary, standby, $"create table if not exists {table} (id int primary key)", table);
        await primary.PsqlAsync($"truncate {table}");
        await WaitReplayedAsync(primary, standby);

        // read_your_writes off: the reads after a commit must not wait for the standby to replay it.
        await using var host = StartProxy(primary, [primary, standby], r => r with { ReadYourWrites = false }, mode);
        await WaitForBalancingAsync(host, 1);
        await using var conn = await OpenAsync(host);

        // Reads, then a write: the reads on the standby, the write and everything after it on the primary, where
        // the transaction sees its own row; once committed the row is there for everyone.
        await using (var tx = await conn.BeginTransactionAsync())
        {
            Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
            Assert.True(await OnStandbyAsync(conn, $"select pg_is_in_recovery() from (select count(*) from {table}) c"));
            Assert.False(await OnStandbyAsync(conn, $"insert into {table} values (1) returning pg_is_in_recovery()"));
            Assert.False(await OnStandbyAsync(conn, $"select pg_is_in_recovery() from {table} where id = 1"));
            await tx.CommitAsync();
        }

        Assert.Equal("1", await primary.PsqlAsync($"select count(*) from {table} where id = 1"));

        // Named prepared statements too: FastPool prepares the read on whichever server runs it.
        await using var preparedRead = new NpgsqlCommand("select pg_is_in_recovery()", conn);
        await preparedRead.PrepareAsync();
        await using var preparedWrite = new NpgsqlCommand($"insert into {table} values (5) returning pg_is_in_recovery()", conn);
        await preparedWrite.PrepareAsync();
        await using (var tx = await conn.BeginTransactionAsync())
        {
            Assert.True((bool)(await preparedRead.ExecuteScalarAsync())!);
            Assert.False((bool)(await preparedWrite.ExecuteScalarAsync())!);
            Assert.False((bool)(await preparedRead.ExecuteScalarAsync())!);
            await tx.RollbackAsync();
        }

        // A transaction that only reads stays on the standby from BEGIN to COMMIT.
        await using (var tx = await conn.BeginTransactionAsync())
        {
            Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
            Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
            await tx.CommitAsync();
        }

        // An error in the standby's part aborts the client's transaction: what follows, the write included, is
        // refused with 25P02 until ROLLBACK, which ends it; nothing was written.
        await ExecAsync(conn, "begin");
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        Assert.Equal("22012", (await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(conn, "select 1/0"))).SqlState);
        Assert.Equal("25P02", (await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(conn, $"insert into {table} values (2)"))).SqlState);
        Assert.Equal("25P02", (await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(conn, "select 1"))).SqlState);
        await ExecAsync(conn, "rollback");

        // An error after the move aborts it on the primary the same way; ROLLBACK undoes the write.
        await ExecAsync(conn, "begin");
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        await ExecAsync(conn, $"insert into {table} values (3)");
        Assert.Equal("23505", (await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(conn, $"insert into {table} values (1)"))).SqlState);
        Assert.Equal("25P02", (await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(conn, "select 1"))).SqlState);
        await ExecAsync(conn, "rollback");
        Assert.Equal("0", await primary.PsqlAsync($"select count(*) from {table} where id in (2, 3)"));

        // A statement that ties the transaction to its server (here SAVEPOINT) moves it too, and works there.
        await ExecAsync(conn, "begin");
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        await ExecAsync(conn, "savepoint a");
        Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        await ExecAsync(conn, $"insert into {table} values (4)");
        await ExecAsync(conn, "rollback to savepoint a");
        await ExecAsync(conn, "commit");
        Assert.Equal("0", await primary.PsqlAsync($"select count(*) from {table} where id = 4"));

        // After the standby ran a query, it is too late to choose the isolation level, on the primary too.
        await ExecAsync(conn, "begin");
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        Assert.Equal("25001", (await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(conn, "set transaction isolation level serializable"))).SqlState);
        await ExecAsync(conn, "rollback");

        // Snapshot transactions cannot span two servers: REPEATABLE READ (asked for, or the client's default) and
        // SERIALIZABLE run on the primary from their first read.
        await ExecAsync(conn, "begin isolation level repeatable read");
        Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        await ExecAsync(conn, "commit");
        await ExecAsync(conn, "set default_transaction_isolation = 'serializable'");
        await ExecAsync(conn, "begin");
        Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        Assert.Equal("serializable", await ScalarAsync(conn, "show transaction_isolation"));
        await ExecAsync(conn, "commit");
        await ExecAsync(conn, "reset default_transaction_isolation");

        // The client is still balanced afterwards.
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        await conn.CloseAsync();

        // No server connection was left inside a transaction on either node.
        await AssertNoServerInTransactionAsync(primary);
        await AssertNoServerInTransactionAsync(standby);
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task Psql_transactions_read_on_the_standby_until_their_write()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await CreateOnPrimaryAsync(primary, standby, "create table if not exists rt_tx_psql (id int)", "rt_tx_psql");
        await using var host = StartProxy(primary, [primary, standby], r => r with { ReadYourWrites = false });
        await WaitForBalancingAsync(host, 1);

        // Each -c is its own Query message, sent after the answer to the one before, as a psql script is.
        var result = await ProtocolTestSupport.RunToolAsync(
            "psql",
            ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", host.Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-d", Database,
             "-c", "begin", "-c", "select pg_is_in_recovery()", "-c", "select pg_is_in_recovery()",
             "-c", "insert into rt_tx_psql values (1) returning pg_is_in_recovery()", "-c", "select pg_is_in_recovery()", "-c", "commit",
             "-c", "begin", "-c", "insert into rt_tx_psql values (2) returning pg_is_in_recovery()", "-c", "commit",
             "-c", "begin", "-c", "select pg_is_in_recovery()", "-c", "commit",
             "-c", "begin", "-c", "select pg_is_in_recovery()", "-c", "commit"],
            TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.ToString());
        // After a transaction that wrote first (as pgbench's TPC-B script does), the client's next one starts on the
        // primary without the move; it started with a read, so the one after it starts on the standby again.
        Assert.Equal(["t", "t", "f", "f", "f", "f", "t"], result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

        // Pipelined: the write arrives while the standby still runs the read before it; it waits for that answer,
        // and the answers reach the client in order.
        await using var raw = await RawPgClient.ConnectAsync(host.Port);
        await raw.LoginAsync(Database);
        await raw.SendAsync([.. RawPgClient.Query("begin"), .. RawPgClient.Query("select pg_is_in_recovery()")]);
        var values = new List<string?>();
        await ReadAnswersAsync(raw, 2, values);
        await raw.SendAsync([
            .. RawPgClient.Query("select pg_is_in_recovery(), pg_sleep(0.2)"),
            .. RawPgClient.Query("insert into rt_tx_psql values (3) returning pg_is_in_recovery()"),
            .. RawPgClient.Query("select pg_is_in_recovery()"),
            .. RawPgClient.Query("commit"),
        ]);
        await ReadAnswersAsync(raw, 4, values);
        Assert.Equal(["t", "t", "f", "f"], values);

        await AssertNoServerInTransactionAsync(primary);
        await AssertNoServerInTransactionAsync(standby);
    }

    private static async Task ReadAnswersAsync(RawPgClient raw, int count, List<string?> values)
    {
        for (int i = 0; i < count; i++)
        {
            var messages = await raw.ReadUntilAsync('Z', TimeSpan.FromSeconds(30));
            Assert.DoesNotContain(messages, m => m.Type == 'E');
            values.AddRange(messages.Where(m => m.Type == 'D').Select(m => m.Columns()[0]));
        }
    }

    [Fact]
    public async Task A_server_default_of_repeatable_read_keeps_transactions_on_the_primary()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await primary.PsqlAsync("drop database if exists rt_iso with (force)");
        await primary.PsqlAsync("create database rt_iso");
        try
        {
            // A default the client never sees: set for the database, on both nodes through replication.
            await primary.PsqlAsync("alter database rt_iso set default_transaction_isolation = 'repeatable read'");
            await WaitReplayedAsync(primary, standby);
            await using var host = StartProxy(primary, [primary, standby], dbName: "rt_iso");
            await WaitForBalancingAsync(host, 1);
            await using var conn = await OpenAsync(host);

            await ExecAsync(conn, "begin");
            Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
            Assert.Equal("repeatable read", await ScalarAsync(conn, "show transaction_isolation"));
            await ExecAsync(conn, "commit");

            // The client's own READ COMMITTED default wins over the database's.
            await ExecAsync(conn, "set default_transaction_isolation = 'read committed'");
            await ExecAsync(conn, "begin");
            Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
            await ExecAsync(conn, "commit");
            await ExecAsync(conn, "reset default_transaction_isolation");

            // Reads outside transactions are balanced as usual.
            Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
            await conn.CloseAsync();
            await AssertNoServerInTransactionAsync(standby);
            ProxyChecks.AssertNoUnexpectedErrors(host);
        }
        finally
        {
            await primary.PsqlAsync("drop database if exists rt_iso with (force)");
        }
    }

    private static async Task WaitReplayedAsync(PgCluster primary, PgCluster standby)
    {
        var lsn = await primary.PsqlAsync("select pg_current_wal_insert_lsn()");
        await Wait.UntilAsync(
            async () => await standby.PsqlAsync($"select pg_last_wal_replay_lsn() >= '{lsn}'") == "t",
            TimeSpan.FromSeconds(30),
            "the standby replayed the primary's changes");
    }

    private static async Task AssertNoServerInTransactionAsync(PgCluster node)
    {
        // Released servers are back to idle at once; a leaked one would stay "idle in transaction".
        await Wait.UntilAsync(
            async () => await node.PsqlAsync("select count(*) from pg_stat_activity where backend_type = 'client backend' and state like 'idle in transaction%'") == "0",
            TimeSpan.FromSeconds(10),
            $"no server connection of {node.Name} idle in transaction");
    }

    private static async Task<string> ScalarAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (string)(await cmd.ExecuteScalarAsync())!;
    }
}
