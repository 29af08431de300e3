using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using Npgsql;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;
using static FastPool.IntegrationTests.TransactionPooling.TransactionPoolingSupport;

namespace FastPool.IntegrationTests.TransactionPooling;

/// <summary>pool_mode = transaction: clients share servers per transaction, and see only their own session.</summary>
[Collection(PostgresCollection.Name)]
public sealed class TransactionPoolingTests
{
    private const string SettingsQuery =
        "select pg_backend_pid(), current_setting('search_path'), current_setting('statement_timeout'), current_setting('application_name')";

    private readonly PostgresFixture _fixture;

    public TransactionPoolingTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task TwoClients_AlternateOnOneServer_EachSeesOnlyItsOwnSettings()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var a = await OpenAsync(proxy, b => b.ApplicationName = "client_a");
        await using var b = await OpenAsync(proxy, b => b.Options = "-c search_path=from_startup_b");

        await ExecAsync(a, "SET search_path = schema_a, public");
        await ExecAsync(a, "set statement_timeout = '5s'");
        await ExecAsync(b, "SET statement_timeout TO 7000");
        await ExecAsync(b, "SET application_name = 'client_b'");

        var pids = new HashSet<string>();
        for (int i = 0; i < 3; i++)
        {
            var rowA = await RowAsync(a, SettingsQuery);
            var rowB = await RowAsync(b, SettingsQuery);
            Assert.Equal(["schema_a, public", "5s", "client_a"], rowA[1..]);
            Assert.Equal(["from_startup_b", "7s", "client_b"], rowB[1..]);
            pids.Add(rowA[0]);
            pids.Add(rowB[0]);
        }

        // One server connection served both clients, so the settings really moved with each transaction.
        Assert.Single(pids);

        // RESET goes back to the session default: the startup value where there was one.
        await ExecAsync(b, "RESET search_path");
        await ExecAsync(a, "RESET ALL");
        Assert.Equal(["\"$user\", public", "0", "client_a"], (await RowAsync(a, SettingsQuery))[1..]);
        Assert.Equal(["from_startup_b", "7s", "client_b"], (await RowAsync(b, SettingsQuery))[1..]);

        // A fresh client gets the server defaults, nothing either client set.
        await using var c = await OpenAsync(proxy);
        Assert.Equal(["\"$user\", public", "0", string.Empty], (await RowAsync(c, SettingsQuery))[1..]);
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task A_lone_client_keeps_getting_the_server_it_released_last()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 4);

        // Four clients inside a transaction at once make the pool open four server connections.
        var others = new List<NpgsqlConnection>();
        for (int i = 0; i < 4; i++)
        {
            var conn = await OpenAsync(proxy);
            others.Add(conn);
            await ExecAsync(conn, "BEGIN");
            await ExecAsync(conn, "select 1");
        }

        var opened = new HashSet<string>();
        foreach (var conn in others)
        {
            opened.Add((await RowAsync(conn, "select pg_backend_pid()"))[0]);
            await ExecAsync(conn, "COMMIT");
            await conn.DisposeAsync();
        }

        Assert.Equal(4, opened.Count);

        // Alone, a client is given the connection released last (PgBouncer's default, server_round_robin = 0), not
        // each of the four in turn: one warm backend, and (on the loop transports) the client's own loop thread. The
        // first few may still move, until a connection served by the client's loop has been released.
        await using var lone = await OpenAsync(proxy);
        var pids = new List<string>();
        for (int i = 0; i < 30; i++)
        {
            pids.Add((await RowAsync(lone, "select pg_backend_pid()"))[0]);
        }

        Assert.Single(pids.Skip(10).Distinct());
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task Large_messages_inside_a_transaction_arrive_whole_and_the_server_is_clean_for_the_next_client()
    {
        // Inside a transaction the bytes are forwarded where they arrive (ClientSession.InlinePooled); messages larger
        // than a socket buffer are sent partly there and finished by the pump, in both directions.
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var a = await OpenAsync(proxy);
        await using var b = await OpenAsync(proxy);
        var big = new string('x', 24 * 1024 * 1024);

        await using (var tx = await a.BeginTransactionAsync())
        {
            await using (var cmd = new NpgsqlCommand("select length($1), md5($1)", a))
            {
                cmd.Parameters.AddWithValue(big);
                await using var reader = await cmd.ExecuteReaderAsync();
                Assert.True(await reader.ReadAsync());
                Assert.Equal(big.Length, reader.GetInt32(0));
                Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(System.Text.Encoding.ASCII.GetBytes(big))), reader.GetString(1));
            }

            await using (var cmd = new NpgsqlCommand("select repeat('y', 20 * 1024 * 1024), 42", a))
            {
                await using var reader = await cmd.ExecuteReaderAsync();
                Assert.True(await reader.ReadAsync());
                var text = reader.GetString(0);
                Assert.Equal(20 * 1024 * 1024, text.Length);
                Assert.DoesNotContain(text, c => c != 'y');
                Assert.Equal(42, reader.GetInt32(1));
            }

            await ExecAsync(a, "SET LOCAL search_path = only_in_this_transaction");
            await tx.CommitAsync();
        }

        // The one server went back to the pool between the transactions: the other client gets it clean.
        Assert.Equal(["\"$user\", public", "0"], (await RowAsync(b, "select current_setting('search_path'), current_setting('statement_timeout')"))[..2]);
        Assert.Equal("7", (await RowAsync(a, "select 3 + 4"))[0]);
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task FailedOrRolledBackSet_DoesNotFollowTheClient_NorLeak()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var a = await OpenAsync(proxy);
        await using var b = await OpenAsync(proxy);

        await using (var tx = await a.BeginTransactionAsync())
        {
            await ExecAsync(a, "SET search_path = rolled_back");
            await tx.RollbackAsync();
        }

        await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(a, "SET statement_timeout = 'not a number'"));
        Assert.Equal("\"$user\", public", (await RowAsync(a, SettingsQuery))[1]);
        Assert.Equal(["\"$user\", public", "0"], (await RowAsync(b, SettingsQuery))[1..3]);
    }

    [Fact]
    public async Task SetInsideAMultiStatementQuery_FollowsTheClient_AndNeverReachesAnother()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var other = await OpenAsync(proxy);
        await using var raw = await RawPgClient.ConnectAsync(proxy.Port);
        await raw.LoginAsync("postgres");
        Assert.DoesNotContain(await raw.QueryAsync("select 1; set search_path = multi_a; set work_mem = '8MB' /* why */"), m => m.Type == 'E');

        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(["\"$user\", public", "4MB"], await RowAsync(other, "select current_setting('search_path'), current_setting('work_mem')"));
            Assert.Equal("multi_a|8MB", await raw.QueryScalarAsync("select current_setting('search_path') || '|' || current_setting('work_mem')"));
        }
    }

    [Theory]
    [InlineData(300_000)]
    [InlineData(1_500_000)]
    public async Task LargeQueries_AreInspectedWholeOrStreamed(int size)
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var conn = await OpenAsync(proxy);
        var literal = new string('x', size);
        Assert.Equal(size, await ScalarAsync<int>(conn, $"select length('{literal}')"));

        await using var raw = await RawPgClient.ConnectAsync(proxy.Port);
        await raw.LoginAsync("postgres");
        Assert.Equal(size.ToString(System.Globalization.CultureInfo.InvariantCulture), await raw.QueryScalarAsync($"set application_name = 'big'; select length('{literal}')"));
        Assert.Equal("big", await raw.QueryScalarAsync("select current_setting('application_name')"));
        Assert.Equal(string.Empty, await ScalarAsync(conn, "select current_setting('application_name')"));
    }

    [Fact]
    public async Task AdvisoryLock_PinsUntilDiscardAll()
    {
        const string heldBy = "select coalesce(max(pid), 0) from pg_locks where locktype = 'advisory' and objid = 4242 and granted";
        await using var proxy = Start(_fixture.Primary, poolSize: 2);
        await using var owner = await OpenAsync(proxy);
        Assert.Equal(true, await ScalarAsync(owner, "select pg_try_advisory_lock(4242)"));
        int pid = await ScalarAsync<int>(owner, "select pg_backend_pid()");
        Assert.Equal(1, proxy.Server.PinnedClientCount);

        await using var other = await OpenAsync(proxy);
        Assert.Equal(pid, await ScalarAsync<int>(other, heldBy));
        Assert.NotEqual(pid, await ScalarAsync<int>(other, "select pg_backend_pid()"));
        Assert.Equal(pid, await ScalarAsync<int>(owner, "select pg_backend_pid()"));

        // DISCARD ALL releases the lock and the pin; the server then goes back to the pool after each transaction.
        await ExecAsync(owner, "DISCARD ALL");
        await Wait.UntilAsync(() => Task.FromResult(proxy.Server.PinnedClientCount == 0), TimeSpan.FromSeconds(10), "the client to be unpinned");
        Assert.Equal(0, await ScalarAsync<int>(other, heldBy));
    }

    [Fact]
    public async Task PipelinedExtendedBatches_ErrorInTheMiddle_LaterBatchesWork()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var other = await OpenAsync(proxy);
        await using var raw = await RawPgClient.ConnectAsync(proxy.Port);
        await raw.LoginAsync("postgres");

        // Three Sync-terminated batches in one write: the server may only go back to the pool after the third
        // ReadyForQuery, even though the first one already says 'I'.
        await raw.SendAsync([.. ExtendedQuery("select 1"), .. ExtendedQuery("select 1/0"), .. ExtendedQuery("select 3")]);
        var messages = new List<PgMessage>();
        for (int i = 0; i < 3; i++)
        {
            messages.AddRange(await raw.ReadUntilAsync('Z', TimeSpan.FromSeconds(10)));
        }

        Assert.Equal(["1", "3"], messages.Where(m => m.Type == 'D').Select(m => m.Columns()[0]));
        Assert.Equal("22012", Assert.Single(messages, m => m.Type == 'E').SqlState);

        // The other client shares the one server between the raw client's batches.
        Assert.Equal(42, await ScalarAsync(other, "select 42"));
        await raw.SendAsync([.. ExtendedQuery("select 4"), .. ExtendedQuery("select 5")]);
        var later = (await raw.ReadUntilAsync('Z', TimeSpan.FromSeconds(10))).Concat(await raw.ReadUntilAsync('Z', TimeSpan.FromSeconds(10)));
        Assert.Equal(["4", "5"], later.Where(m => m.Type == 'D').Select(m => m.Columns()[0]));
        Assert.Equal(43, await ScalarAsync(other, "select 43"));
    }

    [Fact]
    public async Task CopyInAndOut_WhileAnotherClientSharesTheServer()
    {
        var table = UniqueName("tx_copy");
        await Backend.ExecuteAsync(_fixture.Primary, $"create table {table} (id int, name text)");
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var a = await OpenAsync(proxy);
        await using var b = await OpenAsync(proxy);

        await using (var writer = await a.BeginTextImportAsync($"copy {table} from stdin"))
        {
            for (int i = 1; i <= 1000; i++)
            {
                await writer.WriteLineAsync($"{Invariant(i)}\tname {Invariant(i)}");
            }
        }

        Assert.Equal(1000L, await ScalarAsync(b, $"select count(*) from {table}"));
        using (var reader = await a.BeginTextExportAsync($"copy (select id from {table} order by id) to stdout"))
        {
            var lines = new List<string>();
            while (await reader.ReadLineAsync() is { } line)
            {
                lines.Add(line);
            }

            Assert.Equal(1000, lines.Count);
            Assert.Equal("1000", lines[^1]);
        }

        Assert.Equal(500500L, await ScalarAsync(b, $"select sum(id) from {table}"));
        await Backend.ExecuteAsync(_fixture.Primary, $"drop table {table}");
    }

    [Fact]
    public async Task ClientKilledInsideTransaction_RowRolledBack_NextClientClean()
    {
        var table = "public." + UniqueName("tx_killed");
        await Backend.ExecuteAsync(_fixture.Primary, $"create table {table} (id int)");
        await using var proxy = Start(_fixture.Primary, poolSize: 1);

        var raw = await RawPgClient.ConnectAsync(proxy.Port);
        await raw.LoginAsync("postgres");
        Assert.DoesNotContain(await raw.QueryAsync("set search_path = killed_client"), m => m.Type == 'E');
        var serverPid = await raw.QueryScalarAsync("begin; insert into " + table + " values (1); select pg_backend_pid()");
        raw.AbortWithReset();
        await raw.DisposeAsync();

        await using var next = await OpenAsync(proxy);
        var row = await RowAsync(next, $"select pg_backend_pid(), current_setting('search_path'), (select count(*) from {table}), pg_current_xact_id_if_assigned() is null");
        Assert.Equal([serverPid!, "\"$user\", public", "0", "True"], row);
        await Backend.ExecuteAsync(_fixture.Primary, $"drop table {table}");
    }

    [Fact]
    public async Task Cancel_ReachesTheRunningQuery_AndALateCancelHitsNothing()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var conn = await OpenAsync(proxy);
        await using (var sleep = new NpgsqlCommand("select pg_sleep(30)", conn))
        {
            var running = sleep.ExecuteNonQueryAsync();
            await WaitUntilActiveAsync(_fixture.Primary, await BackendPidOfAsync(proxy), "pg_sleep(30)");
            sleep.Cancel();
            await AssertQueryCanceledAsync(running, TimeSpan.FromSeconds(15));
        }

        Assert.Equal(1, await ScalarAsync(conn, "select 1"));

        // A raw client (it sees its cancel key) finishes a query; then another client runs on the same server.
        await using var raw = await RawPgClient.ConnectAsync(proxy.Port);
        var login = await raw.LoginAsync("postgres");
        var key = login.Single(m => m.Type == 'K');
        Assert.Equal("1", await raw.QueryScalarAsync("select 1"));

        await using var sleeper = await OpenAsync(proxy);
        // Long enough that the psql polls below see it running even on a loaded machine (a 1 s sleep was
        // sometimes over before the first poll got through).
        await using var sleepCmd = new NpgsqlCommand("select 'slept' from pg_sleep(4)", sleeper);
        var sleeping = sleepCmd.ExecuteScalarAsync();
        await WaitUntilActiveAsync(_fixture.Primary, await BackendPidOfAsync(proxy), "pg_sleep(4)");
        await using (var canceller = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await canceller.SendAsync(RawPgClient.CancelRequest(key.Int32At(0), key.Int32At(4)));
            await canceller.ReadUntilClosedAsync(TimeSpan.FromSeconds(5));
        }

        // The raw client holds no server: its cancel must not touch the sleeper's query.
        Assert.Equal("slept", await sleeping.WaitAsync(TimeSpan.FromSeconds(15)));
    }

    [Theory]
    [InlineData("30MB", new[] { "begin", "set work_mem = '30MB'", "savepoint s", "rollback to s", "commit" })]
    [InlineData("33MB", new[] { "begin", "set work_mem = '33MB'", "commit and chain", "rollback" })]
    [InlineData("35MB", new[] { "begin", "set work_mem = '35MB'", "savepoint s", "select 1/0", "rollback to savepoint s", "commit" })]
    [InlineData("4MB", new[] { "begin", "savepoint s", "set work_mem = '36MB'", "rollback to s", "commit" })]
    [InlineData("37MB", new[] { "begin", "savepoint a1", "set work_mem = '37MB'", "savepoint a2", "rollback to a2", "release a1", "commit" })]
    [InlineData("4MB", new[] { "begin", "set work_mem = '38MB'", "savepoint s", "release s", "rollback" })]
    [InlineData("39MB", new[] { "begin", "set work_mem = '39MB'", "commit" })]
    [InlineData("40MB", new[] { "begin", "set work_mem = '40MB'", "commit and chain", "commit" })]
    public async Task Settings_follow_savepoints_and_chained_transactions(string expected, string[] statements)
    {
        // As PostgreSQL itself: a rollback to a savepoint undoes only the SETs after it, and a chained COMMIT keeps
        // what came before it whatever happens to the next transaction (PostgreSQL docs, SET and COMMIT).
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var client = await OpenAsync(proxy);
        await using var other = await OpenAsync(proxy);
        foreach (var sql in statements)
        {
            try
            {
                await ExecAsync(client, sql);
            }
            catch (PostgresException ex) when (ex.SqlState == "22012")
            {
                // The division by zero: the transaction fails until the rollback to its savepoint.
            }
        }

        // Another client takes the one server in between: the setting must come back with the client, not stay behind.
        var o1 = (await RowAsync(other, "show work_mem"))[0];
        var c1 = (await RowAsync(client, "show work_mem"))[0];
        var o2 = (await RowAsync(other, "show work_mem"))[0];
        Assert.Equal("4MB " + expected + " 4MB", $"{o1} {c1} {o2}");
    }

    [Theory]
    [InlineData(FastPool.Proxy.Configuration.PoolMode.Transaction)]
    [InlineData(FastPool.Proxy.Configuration.PoolMode.Session)]
    public async Task Application_name_add_host_puts_the_client_address_after_its_login_name(FastPool.Proxy.Configuration.PoolMode mode)
    {
        await using var proxy = Start(_fixture.Primary, mode, poolSize: 2, c => c with { ApplicationNameAddHost = true });
        await using var conn = await OpenAsync(proxy, b => b.ApplicationName = "reporting");
        var name = (await RowAsync(conn, "select current_setting('application_name')"))[0];
        Assert.StartsWith("reporting - 127.0.0.1:", name, StringComparison.Ordinal);

        // A later SET is the client's own choice (as PgBouncer: only the login's name gets the address).
        await ExecAsync(conn, "set application_name = 'renamed'");
        Assert.Equal(["renamed"], await RowAsync(conn, "select current_setting('application_name')"));
    }

    [Fact]
    public async Task Set_to_default_goes_back_to_the_clients_startup_value()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var a = await OpenAsync(proxy, b => b.Options = "-c search_path=from_startup_a -c statement_timeout=4321");
        await using var other = await OpenAsync(proxy);

        await ExecAsync(a, "set search_path = elsewhere");
        await ExecAsync(a, "set statement_timeout = 1000");
        await ExecAsync(other, "set search_path = other_client");
        await ExecAsync(a, "set search_path to default");
        await ExecAsync(a, "set session statement_timeout = default");
        await ExecAsync(other, "select 1");

        // As PostgreSQL itself answers: DEFAULT is the session default, which the startup packet set.
        Assert.Equal(["from_startup_a", "4321ms"], await RowAsync(a, "select current_setting('search_path'), current_setting('statement_timeout')"));
        Assert.Equal(["other_client"], await RowAsync(other, "select current_setting('search_path')"));
    }

    [Fact]
    public async Task Cancels_of_one_client_never_stop_the_query_of_the_next_client_on_its_server()
    {
        // One server for two clients: A's short queries end while A's cancels are still on their way, and B's query is
        // the next thing that server runs. A cancel is delivered as a signal some time after the server got it, so the
        // server must not go to B before that (PgBouncer 1.18's fix for the same race).
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var a = await RawPgClient.ConnectAsync(proxy.Port);
        var key = (await a.LoginAsync("postgres")).Single(m => m.Type == 'K');
        await using var b = await OpenAsync(proxy);

        using var stop = new CancellationTokenSource();
        var cancels = Task.Run(async () =>
        {
            int sent = 0;
            while (!stop.IsCancellationRequested)
            {
                await using var canceller = await RawPgClient.ConnectAsync(proxy.Port);
                await canceller.SendAsync(RawPgClient.CancelRequest(key.Int32At(0), key.Int32At(4)));
                await canceller.ReadUntilClosedAsync(TimeSpan.FromSeconds(5));
                sent++;
            }

            return sent;
        });

        int cancelledB = 0;
        try
        {
            for (int i = 0; i < 25; i++)
            {
                // A's own query may well be cancelled: that is what A asked for.
                await a.QueryAsync("select pg_sleep(0.02)");
                try
                {
                    await ExecAsync(b, "select pg_sleep(0.03)");
                }
                catch (PostgresException ex) when (ex.SqlState == "57014")
                {
                    cancelledB++;
                }
            }
        }
        finally
        {
            stop.Cancel();
        }

        Assert.True(await cancels > 0);
        Assert.Equal(0, cancelledB);
        Assert.Equal(1, await ScalarAsync(b, "select 1"));
    }

    /// <summary>The one backend of a pool of one, as the server sees it (the proxy's client backend).</summary>
    private async Task<int> BackendPidOfAsync(ProxyHost proxy)
    {
        _ = proxy;
        int pid = 0;
        await Wait.UntilAsync(
            async () =>
            {
                var text = await _fixture.Primary.PsqlAsync(
                    "select pid from pg_stat_activity where backend_type = 'client backend' and state = 'active' and query like 'select%pg_sleep%' and pid <> pg_backend_pid() limit 1");
                return int.TryParse(text, out pid);
            },
            TimeSpan.FromSeconds(15),
            "the sleeping backend");
        return pid;
    }
}
