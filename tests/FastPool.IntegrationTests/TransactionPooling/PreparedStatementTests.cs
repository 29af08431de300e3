using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;
using static FastPool.IntegrationTests.TransactionPooling.TransactionPoolingSupport;

namespace FastPool.IntegrationTests.TransactionPooling;

/// <summary>
/// Protocol-level named prepared statements in transaction mode: kept by FastPool per client, shared on the
/// server by text, prepared lazily on whichever server a client gets, evicted within max_prepared_statements.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed partial class PreparedStatementTests
{
    private const string SharedStatements = "select count(*) from pg_prepared_statements where name like 'fp\\_%'";

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    private readonly PostgresFixture _fixture;

    public PreparedStatementTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task ExplicitPrepare_SixClientsOnOneServer_ShareOneServerStatement_AndAreNotPinned()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        var clients = new List<(NpgsqlConnection Conn, NpgsqlCommand Cmd)>();
        try
        {
            for (int c = 0; c < 6; c++)
            {
                var conn = await OpenAsync(proxy);
                var cmd = new NpgsqlCommand("select $1::int * 2, pg_backend_pid()", conn);
                cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer, Value = 0 });
                await cmd.PrepareAsync();
                clients.Add((conn, cmd));
            }

            var pids = new HashSet<int>();
            for (int round = 0; round < 5; round++)
            {
                for (int c = 0; c < clients.Count; c++)
                {
                    var cmd = clients[c].Cmd;
                    cmd.Parameters[0].Value = round * 100 + c;
                    await using var reader = await cmd.ExecuteReaderAsync();
                    Assert.True(await reader.ReadAsync());
                    Assert.Equal((round * 100 + c) * 2, reader.GetInt32(0));
                    pids.Add(reader.GetInt32(1));
                }
            }

            // One server for all six clients, none of them pinned, and the statement prepared there once.
            Assert.Single(pids);
            Assert.Equal(0, proxy.Server.PinnedClientCount);
            Assert.Equal(1, proxy.Server.ServerCount);
            Assert.Equal(1L, await ScalarAsync<long>(clients[0].Conn, SharedStatements));

            // A client closing its statement leaves the shared one to the others.
            await clients[0].Cmd.UnprepareAsync();
            clients[1].Cmd.Parameters[0].Value = 21;
            Assert.Equal(42, await clients[1].Cmd.ExecuteScalarAsync());
            Assert.Equal(1L, await ScalarAsync<long>(clients[0].Conn, SharedStatements));
        }
        finally
        {
            foreach (var (conn, cmd) in clients)
            {
                await cmd.DisposeAsync();
                await conn.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task AutoPrepare_EightClientsOnTwoServers_EveryResultRight()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 2);
        string[] statements =
        [
            "select $1::int + 1",
            "select $1::int + 2",
            "select $1::int + 3",
        ];

        var tasks = Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
        {
            await using var conn = await OpenAsync(proxy, b =>
            {
                b.MaxAutoPrepare = 10;
                b.AutoPrepareMinUsages = 2;
            });
            for (int i = 0; i < 40; i++)
            {
                int k = i % statements.Length;
                await using var cmd = new NpgsqlCommand(statements[k], conn);
                cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer, Value = c * 1000 + i });
                Assert.Equal(c * 1000 + i + k + 1, await cmd.ExecuteScalarAsync());
            }
        }));
        await Task.WhenAll(tasks);

        Assert.Equal(0, proxy.Server.PinnedClientCount);
        Assert.True(proxy.Server.ServerCount <= 2, $"{proxy.Server.ServerCount} server connections");

        // Npgsql really prepared them (a named Parse each), and FastPool shared them on the servers.
        await using var check = await OpenAsync(proxy);
        long shared = await ScalarAsync<long>(check, SharedStatements);
        Assert.InRange(shared, 1L, statements.Length);
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task Eviction_MaxTwo_FiveStatementsRoundRobin_ThreeClients_EveryResultRight()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1, configure: c => c with { MaxPreparedStatements = 2 });
        var clients = new List<(NpgsqlConnection Conn, NpgsqlCommand[] Cmds)>();
        try
        {
            for (int c = 0; c < 3; c++)
            {
                var conn = await OpenAsync(proxy);
                var cmds = new NpgsqlCommand[5];
                for (int k = 0; k < cmds.Length; k++)
                {
                    cmds[k] = new NpgsqlCommand($"select $1::int * 10 + {k}", conn);
                    cmds[k].Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer, Value = 0 });
                    await cmds[k].PrepareAsync();
                }

                clients.Add((conn, cmds));
            }

            for (int round = 0; round < 6; round++)
            {
                for (int k = 0; k < 5; k++)
                {
                    for (int c = 0; c < clients.Count; c++)
                    {
                        var cmd = clients[c].Cmds[(k + c) % 5];
                        int value = round * 10 + c;
                        cmd.Parameters[0].Value = value;
                        Assert.Equal(value * 10 + ((k + c) % 5), await cmd.ExecuteScalarAsync());
                    }
                }
            }

            Assert.InRange(await ScalarAsync<long>(clients[0].Conn, SharedStatements), 0L, 2L);
            Assert.Equal(0, proxy.Server.PinnedClientCount);
            ProxyChecks.AssertNoUnexpectedErrors(proxy);
        }
        finally
        {
            foreach (var (conn, cmds) in clients)
            {
                foreach (var cmd in cmds)
                {
                    await cmd.DisposeAsync();
                }

                await conn.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task PrepareWithSyntaxError_Gets42601_AndTheNextQueriesWork()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var conn = await OpenAsync(proxy);
        await using var bad = new NpgsqlCommand("selec 1", conn);
        var error = await Assert.ThrowsAsync<PostgresException>(() => bad.PrepareAsync());
        Assert.Equal("42601", error.SqlState);

        Assert.Equal(1, await ScalarAsync<int>(conn, "select 1"));
        await using var good = new NpgsqlCommand("select 7", conn);
        await good.PrepareAsync();
        Assert.Equal(7, await good.ExecuteScalarAsync());
        Assert.Equal(7, await good.ExecuteScalarAsync());
    }

    [Fact]
    public async Task PipelinedBatch_ErrorInTheMiddle_SkipsToSync_StatementsBeforeItStay()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var raw = await RawPgClient.ConnectAsync(proxy.Port);
        await raw.LoginAsync("postgres");

        // s1 is prepared, s2 fails, and the server skips the rest up to Sync (55.2.3).
        await raw.SendAsync([.. ParseNamed("s1", "select 11"), .. ParseNamed("s2", "selec 12"), .. BindNamed("s1"), .. Execute(), .. Sync()]);
        var replies = await raw.ReadUntilAsync('Z', s_timeout);
        Assert.Equal("1EZ", Codes(replies));
        Assert.Equal("42601", replies[1].SqlState);

        Assert.Equal(["11"], await RunNamedAsync(raw, "s1"));

        await raw.SendAsync([.. BindNamed("s2"), .. Execute(), .. Sync()]);
        replies = await raw.ReadUntilAsync('Z', s_timeout);
        Assert.Equal("EZ", Codes(replies));
        Assert.Equal("26000", replies[0].SqlState);
        Assert.Equal("1", await raw.QueryScalarAsync("select 1"));
    }

    [Fact]
    public async Task RawClients_SameText_ShareTheServerStatement_CloseAndDeallocateAllOnlyAffectTheClient()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var a = await RawPgClient.ConnectAsync(proxy.Port);
        await a.LoginAsync("postgres");
        await using var b = await RawPgClient.ConnectAsync(proxy.Port);
        await b.LoginAsync("postgres");

        // Both parse the same text under their own names; each sees its own ParseComplete, the server has one.
        await a.SendAsync([.. ParseNamed("mine", "select 'shared'::text"), .. DescribeStatement("mine"), .. Sync()]);
        Assert.Equal("1tTZ", Codes(await a.ReadUntilAsync('Z', s_timeout)));
        await b.SendAsync([.. ParseNamed("yours", "select 'shared'::text"), .. DescribeStatement("yours"), .. Sync()]);
        Assert.Equal("1tTZ", Codes(await b.ReadUntilAsync('Z', s_timeout)));
        Assert.Equal("1", await a.QueryScalarAsync(SharedStatements));

        // A's Close answers CloseComplete; B's statement still works; A's name is gone for A.
        await a.SendAsync([.. CloseStatement("mine"), .. Sync()]);
        Assert.Equal("3Z", Codes(await a.ReadUntilAsync('Z', s_timeout)));
        Assert.Equal(["shared"], await RunNamedAsync(b, "yours"));
        await a.SendAsync([.. BindNamed("mine"), .. Execute(), .. Sync()]);
        var replies = await a.ReadUntilAsync('Z', s_timeout);
        Assert.Equal("26000", Assert.Single(replies, m => m.Type == 'E').SqlState);

        // DEALLOCATE ALL from A drops the server's statements and A's; B's is prepared again when it needs it.
        await a.SendAsync([.. ParseNamed("again", "select 'shared'::text"), .. Sync()]);
        Assert.Equal("1Z", Codes(await a.ReadUntilAsync('Z', s_timeout)));
        Assert.DoesNotContain(await a.QueryAsync("DEALLOCATE ALL"), m => m.Type == 'E');
        Assert.Equal("0", await a.QueryScalarAsync(SharedStatements));
        await a.SendAsync([.. BindNamed("again"), .. Execute(), .. Sync()]);
        Assert.Equal("26000", Assert.Single(await a.ReadUntilAsync('Z', s_timeout), m => m.Type == 'E').SqlState);
        Assert.Equal(["shared"], await RunNamedAsync(b, "yours"));
        Assert.Equal("1", await a.QueryScalarAsync(SharedStatements));
    }

    [Fact]
    public async Task LazyPrepareFails_ErrorArrivesAtTheBind_AndTheClientGoesOn()
    {
        var table = UniqueName("tx_lazy");
        await Backend.ExecuteAsync(_fixture.Primary, $"create table public.{table} (id int); insert into public.{table} values (1), (2)");
        try
        {
            await using var proxy = Start(_fixture.Primary, poolSize: 1);
            await using var a = await RawPgClient.ConnectAsync(proxy.Port);
            await a.LoginAsync("postgres");
            await using var b = await RawPgClient.ConnectAsync(proxy.Port);
            await b.LoginAsync("postgres");

            await a.SendAsync([.. ParseNamed("count", $"select count(*) from public.{table}"), .. Sync()]);
            Assert.Equal("1Z", Codes(await a.ReadUntilAsync('Z', s_timeout)));
            Assert.Equal(["2"], await RunNamedAsync(a, "count"));

            // The server forgets its statements (B's DISCARD ALL) and the table goes: A's next Bind needs a Parse
            // FastPool sends for it, which fails; A sees that error in place of its BindComplete, then ReadyForQuery.
            Assert.DoesNotContain(await b.QueryAsync("DISCARD ALL"), m => m.Type == 'E');
            await Backend.ExecuteAsync(_fixture.Primary, $"drop table public.{table}");
            await a.SendAsync([.. BindNamed("count"), .. Execute(), .. Sync()]);
            var replies = await a.ReadUntilAsync('Z', s_timeout);
            Assert.Equal("EZ", Codes(replies));
            Assert.Equal("42P01", replies[0].SqlState);

            Assert.Equal("3", await a.QueryScalarAsync("select 3"));
            await Backend.ExecuteAsync(_fixture.Primary, $"create table public.{table} (id int)");
            Assert.Equal(["0"], await RunNamedAsync(a, "count"));
        }
        finally
        {
            await Backend.ExecuteAsync(_fixture.Primary, $"drop table if exists public.{table}");
        }
    }

    [Fact]
    public async Task ParseOfAKnownStatement_IsAnsweredWithoutAServer_WhileAnotherClientHoldsIt()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var first = await RawPgClient.ConnectAsync(proxy.Port);
        await first.LoginAsync("postgres");
        await first.SendAsync([.. ParseNamed("p", "select 'known'::text"), .. Sync()]);
        Assert.Equal("1Z", Codes(await first.ReadUntilAsync('Z', s_timeout)));

        // The only server is held inside a transaction; a client preparing the same statement is answered anyway
        // (as libpq's PQprepare does it: Parse, Sync), and its Bind waits for the server.
        await using var holder = await OpenAsync(proxy);
        await using var tx = await holder.BeginTransactionAsync();
        await using (var inside = new NpgsqlCommand("select 1", holder, tx))
        {
            await inside.ExecuteNonQueryAsync();
        }

        await using var second = await RawPgClient.ConnectAsync(proxy.Port);
        await second.LoginAsync("postgres");
        await second.SendAsync([.. ParseNamed("mine", "select 'known'::text"), .. Sync()]);
        var replies = await second.ReadUntilAsync('Z', s_timeout);
        Assert.Equal("1Z", Codes(replies));
        Assert.Equal((byte)'I', replies[^1].Body[0]);

        // A statement no server has accepted yet still goes to a server (its errors come at Parse): it waits.
        await second.SendAsync([.. ParseNamed("new", "select 'unknown'::text"), .. Sync()]);
        var waiting = second.ReadUntilAsync('Z', TimeSpan.FromSeconds(20));
        await Task.Delay(500);
        Assert.False(waiting.IsCompleted);
        await tx.CommitAsync();
        Assert.Equal("1Z", Codes(await waiting));
        Assert.Equal(["known"], await RunNamedAsync(second, "mine"));
        Assert.Equal(["unknown"], await RunNamedAsync(second, "new"));
    }

    [Fact]
    public async Task DiscardAllThatFails_TheServerIsNotHandedOn_OthersStillPrepare()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var a = await OpenAsync(proxy);
        await using (var prepared = new NpgsqlCommand("select 'kept'::text", a))
        {
            await prepared.PrepareAsync();
            Assert.Equal("kept", await prepared.ExecuteScalarAsync());
        }

        int pid = await ScalarAsync<int>(a, "select pg_backend_pid()");
        await ExecAsync(a, "BEGIN");
        var error = await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(a, "DISCARD ALL"));
        Assert.Equal("25001", error.SqlState);
        await ExecAsync(a, "ROLLBACK");

        // The statement is still on that server, though the client asked for it to be dropped: another client
        // preparing the same text must not meet it there (42P05), so it gets a fresh server.
        await using var b = await OpenAsync(proxy);
        await using var same = new NpgsqlCommand("select 'kept'::text", b);
        await same.PrepareAsync();
        Assert.Equal("kept", await same.ExecuteScalarAsync());
        Assert.NotEqual(pid, await ScalarAsync<int>(b, "select pg_backend_pid()"));
        Assert.Equal(1, proxy.Server.ServerCount);
    }

    [Fact]
    public async Task PreparedSet_IsFollowedWhenExecuted_NotWhenPrepared_AndNeverReachesAnotherClient()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 1);
        await using var a = await OpenAsync(proxy);
        await using var b = await OpenAsync(proxy);
        await using var set = new NpgsqlCommand("SET statement_timeout = '7s'", a);
        await set.PrepareAsync();

        // Prepared, not executed: nothing changed for A.
        Assert.Equal("0", await ScalarAsync(a, "show statement_timeout"));
        await set.ExecuteNonQueryAsync();
        Assert.Equal("7s", await ScalarAsync(a, "show statement_timeout"));
        Assert.Equal("0", await ScalarAsync(b, "show statement_timeout"));

        await ExecAsync(a, "RESET statement_timeout");
        Assert.Equal("0", await ScalarAsync(a, "show statement_timeout"));
        await set.ExecuteNonQueryAsync();
        Assert.Equal("0", await ScalarAsync(b, "show statement_timeout"));
        Assert.Equal("7s", await ScalarAsync(a, "show statement_timeout"));
        Assert.Equal(0, proxy.Server.PinnedClientCount);
    }

    [Fact]
    public async Task An_eviction_skipped_by_an_error_does_not_break_the_pipelined_batch_after_it()
    {
        // max_prepared_statements = 2: preparing c evicts a (a Close FastPool adds), but the division by zero before
        // it makes the server skip that Close, so a still exists there. The next batch, pipelined before the error
        // came back, needs a again: as PostgreSQL itself, it must just run (not fail with 42P05 on FastPool's name).
        await using var proxy = Start(_fixture.Primary, poolSize: 1, configure: c => c with { MaxPreparedStatements = 2 });
        await using var raw = await RawPgClient.ConnectAsync(proxy.Port);
        await raw.LoginAsync("postgres");
        byte[] run(string name) => [.. BindNamed(name), .. RawPgClient.Message('E', [0, 0, 0, 0, 0])];
        await raw.SendAsync([
            .. ParseNamed("a", "select 1"), .. run("a"),
            .. ParseNamed("b", "select 1/0"), .. run("b"),
            .. ParseNamed("c", "select 3"), .. run("c"), .. Sync(),
            .. run("a"), .. Sync(),
        ]);

        var first = await raw.ReadUntilAsync('Z', TimeSpan.FromSeconds(10));
        Assert.Equal("22012", Assert.Single(first, m => m.Type == 'E').SqlState);
        var second = await raw.ReadUntilAsync('Z', TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(second, m => m.Type == 'E');
        Assert.Equal("1", Assert.Single(second, m => m.Type == 'D').Columns()[0]);

        // And later, on the same server, for this client and a new one.
        await raw.SendAsync([.. run("a"), .. Sync()]);
        Assert.Equal("1", Assert.Single(await raw.ReadUntilAsync('Z', TimeSpan.FromSeconds(10)), m => m.Type == 'D').Columns()[0]);
        await using var next = await RawPgClient.ConnectAsync(proxy.Port);
        await next.LoginAsync("postgres");
        await next.SendAsync([.. ParseNamed("mine", "select 1"), .. run("mine"), .. Sync()]);
        var answer = await next.ReadUntilAsync('Z', TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(answer, m => m.Type == 'E');
    }

    [Fact]
    public async Task MaxPreparedStatementsZero_NamedStatementPinsAsBefore()
    {
        await using var proxy = Start(_fixture.Primary, poolSize: 2, configure: c => c with { MaxPreparedStatements = 0 });
        await using var conn = await OpenAsync(proxy);
        await using var cmd = new NpgsqlCommand("select 5", conn);
        await cmd.PrepareAsync();
        Assert.Equal(5, await cmd.ExecuteScalarAsync());
        Assert.Equal(1, proxy.Server.PinnedClientCount);
        Assert.Equal(1L, await ScalarAsync<long>(conn, "select count(*) from pg_prepared_statements where statement = 'select 5'"));
        Assert.Equal(0L, await ScalarAsync<long>(conn, SharedStatements));
    }

    [Fact]
    public async Task SearchPath_SameText_IsNotSharedAcrossSchemas()
    {
        var a = UniqueName("tx_sp_a");
        var b = UniqueName("tx_sp_b");
        await Backend.ExecuteAsync(_fixture.Primary, $"create schema {a}; create table {a}.t (v text); insert into {a}.t values ('a'); create schema {b}; create table {b}.t (v text); insert into {b}.t values ('b')");
        try
        {
            await using var proxy = Start(_fixture.Primary, poolSize: 1);
            await using var ca = await OpenAsync(proxy, s => s.SearchPath = a);
            await using var cb = await OpenAsync(proxy, s => s.SearchPath = b);
            await using var qa = new NpgsqlCommand("select v from t", ca);
            await using var qb = new NpgsqlCommand("select v from t", cb);
            await qa.PrepareAsync();
            await qb.PrepareAsync();
            for (int i = 0; i < 3; i++)
            {
                Assert.Equal("a", await qa.ExecuteScalarAsync());
                Assert.Equal("b", await qb.ExecuteScalarAsync());
            }
        }
        finally
        {
            await Backend.ExecuteAsync(_fixture.Primary, $"drop schema {a} cascade; drop schema {b} cascade");
        }
    }

    [Fact]
    public async Task PgbenchPrepared_EightClientsOnTwoServers_NoFailedTransactions()
    {
        var database = UniqueName("tx_prep");
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
                ["-h", "127.0.0.1", "-p", Invariant(proxy.Port), "-U", "postgres", "-n", "-c", "8", "-j", "2", "-t", "200", "-M", "prepared", database],
                TimeSpan.FromSeconds(180));
            Assert.True(run.ExitCode == 0, run.ToString());
            var failed = FailedTransactions().Match(run.StandardOutput);
            Assert.True(failed.Success, run.ToString());
            Assert.Equal("0", failed.Groups[1].Value);
            Assert.Equal("1600", await _fixture.Primary.PsqlAsync("select count(*) from pgbench_history", database));
            Assert.True(proxy.Server.ServerCount <= 2, $"{proxy.Server.ServerCount} server connections");
            Assert.Equal(0, proxy.Server.PinnedClientCount);
            ProxyChecks.AssertNoUnexpectedErrors(proxy);
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop database if exists {database} with (force)");
        }
    }

    // ---- named extended-protocol messages (55.7) ------------------------------------------------

    private static byte[] CString(string s) => [.. Encoding.UTF8.GetBytes(s), 0];

    private static byte[] ParseNamed(string name, string sql) => RawPgClient.Message('P', [.. CString(name), .. CString(sql), 0, 0]);

    private static byte[] BindNamed(string name) => RawPgClient.Message('B', [0, .. CString(name), 0, 0, 0, 0, 0, 0]);

    private static byte[] DescribeStatement(string name) => RawPgClient.Message('D', [(byte)'S', .. CString(name)]);

    private static byte[] CloseStatement(string name) => RawPgClient.Message('C', [(byte)'S', .. CString(name)]);

    private static string Codes(List<PgMessage> messages) =>
        new(messages.Where(m => m.Type is not ('N' or 'S')).Select(m => m.Type).ToArray());

    /// <summary>Bind/Execute/Sync of a named statement; the first column of each row.</summary>
    private static async Task<List<string?>> RunNamedAsync(RawPgClient client, string name)
    {
        await client.SendAsync([.. BindNamed(name), .. Execute(), .. Sync()]);
        var replies = await client.ReadUntilAsync('Z', s_timeout);
        Assert.True(replies.All(m => m.Type != 'E'), string.Join(", ", replies));
        Assert.StartsWith("2", Codes(replies), StringComparison.Ordinal);
        return replies.Where(m => m.Type == 'D').Select(m => m.Columns()[0]).ToList();
    }

    [GeneratedRegex(@"number of failed transactions: (\d+)")]
    private static partial Regex FailedTransactions();
}
