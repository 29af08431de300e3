using System.Text.RegularExpressions;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;
using static FastPool.IntegrationTests.TransactionPooling.TransactionPoolingSupport;

namespace FastPool.IntegrationTests.TransactionPooling;

/// <summary>Session state that pins a client to its server, statement mode, and libpq clients under load.</summary>
[Collection(PostgresCollection.Name)]
public sealed partial class PinningAndModeTests
{
    private readonly PostgresFixture _fixture;

    public PinningAndModeTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Listen_PinsTheListener_NotifyArrives_OthersStillServed()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 2);
        await using var listener = await OpenAsync(proxy);
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        listener.Notification += (_, e) => received.TrySetResult(e.Payload);
        await ExecAsync(listener, "LISTEN tx_channel");
        int listenerPid = await ScalarAsync<int>(listener, "select pg_backend_pid()");
        Assert.Equal(1, proxy.Server.PinnedClientCount);

        // Two more clients share the one server left, many transactions each, while the listener keeps its own.
        await using var a = await OpenAsync(proxy);
        await using var b = await OpenAsync(proxy);
        for (int i = 0; i < 5; i++)
        {
            Assert.NotEqual(listenerPid, await ScalarAsync<int>(a, "select pg_backend_pid()"));
            Assert.NotEqual(listenerPid, await ScalarAsync<int>(b, "select pg_backend_pid()"));
        }

        await ExecAsync(a, "NOTIFY tx_channel, 'hello'");
        await listener.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("hello", await received.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(listenerPid, await ScalarAsync<int>(listener, "select pg_backend_pid()"));
    }

    [Fact]
    public async Task TempTable_PinsTheClient_AndIsGoneForTheNextClient()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 2);
        int pid;
        await using (var owner = await OpenAsync(proxy))
        {
            await ExecAsync(owner, "create temp table tx_temp (id int)");
            await ExecAsync(owner, "insert into tx_temp values (1), (2)");
            pid = await ScalarAsync<int>(owner, "select pg_backend_pid()");
            await using (var other = await OpenAsync(proxy))
            {
                Assert.NotEqual(pid, await ScalarAsync<int>(other, "select pg_backend_pid()"));
            }

            Assert.Equal(2L, await ScalarAsync(owner, "select count(*) from tx_temp"));
            Assert.Equal(pid, await ScalarAsync<int>(owner, "select pg_backend_pid()"));
            Assert.Equal(1, proxy.Server.PinnedClientCount);
        }

        // The pinned client's server was reset (DISCARD ALL) before anyone else could get it.
        await Wait.UntilAsync(() => Task.FromResult(proxy.Server.PinnedClientCount == 0), TimeSpan.FromSeconds(10), "the pinned client to leave");
        await using var next1 = await OpenAsync(proxy);
        await using var next2 = await OpenAsync(proxy);
        await using var tx = await next1.BeginTransactionAsync();
        await using var tx2 = await next2.BeginTransactionAsync();
        Assert.Equal(0L, await ScalarAsync(next1, "select count(*) from pg_class where relname = 'tx_temp' and relpersistence = 't' and pg_table_is_visible(oid)"));
        Assert.Equal(0L, await ScalarAsync(next2, "select count(*) from pg_class where relname = 'tx_temp' and relpersistence = 't' and pg_table_is_visible(oid)"));
    }

    [Fact]
    public async Task A_table_created_in_pg_temp_pins_like_a_temp_table()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 2);
        await using var owner = await OpenAsync(proxy);
        await ExecAsync(owner, "create table pg_temp.tx_pg_temp (id int)");
        await using (var other = await OpenAsync(proxy))
        {
            Assert.Equal(1, await ScalarAsync<int>(other, "select 1"));
        }

        await ExecAsync(owner, "insert into pg_temp.tx_pg_temp values (1)");
        Assert.Equal(1L, await ScalarAsync(owner, "select count(*) from pg_temp.tx_pg_temp"));
        Assert.Equal(1, proxy.Server.PinnedClientCount);
    }

    [Fact]
    public async Task A_drivers_reset_statements_end_the_pins_their_state_caused()
    {
        // One server: while the first client is pinned, nobody else can run.
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var owner = await OpenAsync(proxy);
        await ExecAsync(owner, "create temp table tx_reset_temp (id int)");
        await ExecAsync(owner, "select pg_advisory_lock(4242)");
        await ExecAsync(owner, "listen tx_reset_channel");
        await ExecAsync(owner, "begin; declare tx_reset_cursor cursor with hold for select 1; commit");
        await ExecAsync(owner, "set session authorization default");
        Assert.Equal(1, proxy.Server.PinnedClientCount);

        // Npgsql's reset when a connection goes back to its pool: each statement undoes one kind of state, and together
        // they undo all of it, so the client holds its server no longer.
        await ExecAsync(owner, "SET SESSION AUTHORIZATION DEFAULT;RESET ALL;CLOSE ALL;UNLISTEN *;SELECT pg_advisory_unlock_all();DISCARD SEQUENCES;DISCARD TEMP");
        await WaitUnpinnedAsync(proxy);
        await using var other = await OpenAsync(proxy);
        Assert.Equal(1, await ScalarAsync(other, "select 1"));
        Assert.Equal(0L, await ScalarAsync<long>(other, "select count(*) from pg_locks where locktype = 'advisory' and objid = 4242"));
    }

    [Fact]
    public async Task Reset_all_keeps_the_role_as_PostgreSQL_does_and_it_never_reaches_another_client()
    {
        await _fixture.Primary.PsqlAsync("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fp_tx_role') THEN CREATE ROLE fp_tx_role; END IF; END $$");
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var a = await OpenAsync(proxy);
        await using var b = await OpenAsync(proxy);

        await ExecAsync(a, "SET ROLE fp_tx_role");
        await ExecAsync(a, "RESET ALL");
        for (int i = 0; i < 3; i++)
        {
            // RESET ALL does not reset the role (PostgreSQL docs, SET ROLE): a keeps it; b, on the same server, never has it.
            Assert.Equal(["fp_tx_role", "postgres"], await RowAsync(a, "select current_user, session_user"));
            Assert.Equal(["postgres", "postgres"], await RowAsync(b, "select current_user, session_user"));
        }

        // SET SESSION AUTHORIZATION DEFAULT does reset it.
        await ExecAsync(a, "SET SESSION AUTHORIZATION DEFAULT");
        Assert.Equal(["postgres", "postgres"], await RowAsync(a, "select current_user, session_user"));
        await WaitUnpinnedAsync(proxy);
    }

    [Fact]
    public async Task A_session_set_config_stays_the_clients_own_and_a_local_one_pins_nothing()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 2);
        await using var a = await OpenAsync(proxy);
        await using var b = await OpenAsync(proxy);
        var defaultWorkMem = (await RowAsync(b, "select current_setting('work_mem')"))[0];

        // set_config(..., true) is SET LOCAL: nothing outlives the transaction, so nothing pins.
        await ExecAsync(a, "select set_config('work_mem', '7777kB', true)");
        Assert.Equal(0, proxy.Server.PinnedClientCount);

        // set_config(..., false) is a SET FastPool does not parse: the client keeps its server, and its value.
        await ExecAsync(a, "select set_config('work_mem', '9999kB', false)");
        Assert.Equal(1, proxy.Server.PinnedClientCount);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal("9999kB", (await RowAsync(a, "select current_setting('work_mem')"))[0]);
            Assert.Equal(defaultWorkMem, (await RowAsync(b, "select current_setting('work_mem')"))[0]);
        }

        await ExecAsync(a, "discard all");
        await WaitUnpinnedAsync(proxy);
    }

    /// <summary>A pin ends when the transaction that undid its state is handed back, which may come just after the client saw the answer.</summary>
    private static Task WaitUnpinnedAsync(ProxyHost proxy) =>
        Wait.UntilAsync(() => Task.FromResult(proxy.Server.PinnedClientCount == 0), TimeSpan.FromSeconds(10), "no client pinned");

    [Fact]
    public async Task PinOff_TempTableDoesNotPin()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1, configure: c => c with
        {
            FastPool = c.FastPool with { Pins = PinReasons.All & ~PinReasons.TempTables },
        });
        await using var owner = await OpenAsync(proxy);
        await ExecAsync(owner, "create temp table tx_temp_unpinned (id int)");
        Assert.Equal(0, proxy.Server.PinnedClientCount);
        await using var other = await OpenAsync(proxy);
        Assert.Equal(1, await ScalarAsync(other, "select 1"));
        await ExecAsync(owner, "discard all");
    }

    [Fact]
    public async Task StatementMode_RefusesTransactionBlock_AndServerIsRolledBack()
    {
        var table = "public." + UniqueName("stmt_mode");
        await Backend.ExecuteAsync(_fixture.Primary, $"create table {table} (id int)");
        await using var proxy = Start(_fixture.Primary, PoolMode.Statement, poolSize: 1);
        await using (var conn = await OpenAsync(proxy))
        {
            Assert.Equal(1, await ScalarAsync(conn, "select 1"));
            await ExecAsync(conn, $"insert into {table} values (1)");

            var ex = await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                await using var tx = await conn.BeginTransactionAsync();
                await ExecAsync(conn, $"insert into {table} values (2)");
                await tx.CommitAsync();
            });
            var pg = ex as PostgresException ?? ex.InnerException as PostgresException;
            Assert.True(pg is not null, ex.ToString());
            Assert.Contains("transaction blocks not allowed in statement pooling mode", pg.MessageText, StringComparison.Ordinal);
        }

        await using var next = await OpenAsync(proxy);
        Assert.Equal(1L, await ScalarAsync(next, $"select count(*) from {table}"));
        Assert.Equal(true, await ScalarAsync(next, "select pg_current_xact_id_if_assigned() is null"));
        await Backend.ExecuteAsync(_fixture.Primary, $"drop table {table}");
    }

    [Fact]
    public async Task Psql_ScriptWithSetCopyAndTransactions_WhileANpgsqlClientSharesTheServer()
    {
        var table = UniqueName("tx_psql");
        await Backend.ExecuteAsync(_fixture.Primary, $"create table public.{table} (id int, name text)");
        var dir = Directory.CreateTempSubdirectory("fastpool-txpsql-").FullName;
        try
        {
            var input = Path.Combine(dir, "in.csv");
            await File.WriteAllTextAsync(input, string.Join('\n', Enumerable.Range(1, 200).Select(i => $"{Invariant(i)},n{Invariant(i)}")) + "\n");
            var script = Path.Combine(dir, "script.sql");
            await File.WriteAllTextAsync(script, $"""
                \set ON_ERROR_STOP on
                set search_path = psql_schema, public;
                \copy {table} from '{input}' with (format csv)
                begin;
                insert into {table} values (1000, 'in tx');
                commit;
                select current_setting('search_path'), count(*) from {table};
                """);

            await using var proxy = Start(_fixture.Primary, poolSize: 1);
            await using var other = await OpenAsync(proxy);
            var psql = RunToolAsync(
                "psql",
                ["-X", "-At", "-h", "127.0.0.1", "-p", Invariant(proxy.Port), "-U", "postgres", "-d", "postgres", "-f", script],
                TimeSpan.FromSeconds(60));
            for (int i = 0; i < 20 && !psql.IsCompleted; i++)
            {
                Assert.Equal("\"$user\", public", await ScalarAsync(other, "select current_setting('search_path')"));
            }

            var result = await psql;
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal("psql_schema, public|201", result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
            await Backend.ExecuteAsync(_fixture.Primary, $"drop table public.{table}");
        }
    }

    [Theory]
    [InlineData("simple")]
    [InlineData("extended")]
    public async Task Pgbench_EightClientsOnTwoServers_NoFailedTransactions(string mode)
    {
        var database = UniqueName("tx_bench");
        await _fixture.Primary.PsqlAsync($"create database {database}");
        try
        {
            var init = await RunToolAsync(
                "pgbench",
                ["-h", _fixture.Primary.Host, "-p", Invariant(_fixture.Primary.Port), "-U", "postgres", "-i", "-s", "1", "-q", database],
                TimeSpan.FromSeconds(120));
            Assert.True(init.ExitCode == 0, init.ToString());

            await using var proxy = Start(_fixture.Primary, poolSize: 2);
            var run = await RunToolAsync(
                "pgbench",
                ["-h", "127.0.0.1", "-p", Invariant(proxy.Port), "-U", "postgres", "-n", "-c", "8", "-j", "2", "-t", "50", "-M", mode, database],
                TimeSpan.FromSeconds(120));
            Assert.True(run.ExitCode == 0, run.ToString());
            var failed = FailedTransactions().Match(run.StandardOutput);
            Assert.True(failed.Success, run.ToString());
            Assert.Equal("0", failed.Groups[1].Value);
            Assert.Equal("400", await _fixture.Primary.PsqlAsync("select count(*) from pgbench_history", database));
            Assert.True(proxy.Server.ServerCount <= 2, $"{proxy.Server.ServerCount} server connections");
            ProxyChecks.AssertNoUnexpectedErrors(proxy);
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop database if exists {database} with (force)");
        }
    }

    [GeneratedRegex(@"number of failed transactions: (\d+)")]
    private static partial Regex FailedTransactions();
}
