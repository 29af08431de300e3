using FastPool.IntegrationTests.Infrastructure;
using Npgsql;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Protocol;

/// <summary>
/// Session pooling reuses server connections, and server_reset_query (DISCARD ALL, plus a ROLLBACK first when
/// needed) leaves nothing of one client's session for the next.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class SessionReuseTests
{
    private readonly PostgresFixture _fixture;

    public SessionReuseTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task TwentySequentialClients_ShareOneBackend_AndSeeNoTraceOfThePreviousClient()
    {
        var table = UniqueName("reuse");
        var channel = UniqueName("reuse_chan");
        await _fixture.Primary.PsqlAsync($"create table {table}(client int)");
        try
        {
            await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { DefaultPoolSize = 1 });
            var defaultSearchPath = await _fixture.Primary.PsqlAsync("show search_path");
            int? backendPid = null;
            for (int i = 0; i < 20; i++)
            {
                await using var conn = await proxy.OpenAsync();
                var pid = await ScalarAsync<int>(conn, "select pg_backend_pid()");
                backendPid ??= pid;
                Assert.Equal(backendPid, pid);
                Assert.NotEqual(pid, conn.ProcessID);

                // Nothing left from client i-1.
                Assert.Equal(defaultSearchPath, await ScalarAsync(conn, "show search_path"));
                Assert.Equal("0", await ScalarAsync(conn, "show statement_timeout"));
                Assert.Equal("postgres", await ScalarAsync(conn, "select current_user"));
                Assert.Equal(string.Empty, await ScalarAsync(conn, "select coalesce(current_setting('proto.marker', true), '')"));
                Assert.True(await ScalarAsync<bool>(conn, "select to_regclass('pg_temp.client_temp') is null"), $"client {i} sees a TEMP table");
                Assert.Equal(0L, await ScalarAsync<long>(conn, "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()"));
                Assert.Equal(0L, await ScalarAsync<long>(conn, "select count(*) from pg_listening_channels()"));
                Assert.Equal(0L, await ScalarAsync<long>(conn, "select count(*) from pg_prepared_statements where name = 'client_stmt'"));
                Assert.Equal(0L, await ScalarAsync<long>(conn, "select count(*) from pg_cursors where name = 'client_cursor'"));

                // Not inside a leftover transaction: SAVEPOINT only works in a transaction block.
                var savepoint = await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(conn, "savepoint probe"));
                Assert.Equal(PostgresErrorCodes.NoActiveSqlTransaction, savepoint.SqlState);

                // Rows of clients that left inside a transaction were rolled back; committed ones stay.
                Assert.Equal((long)Enumerable.Range(0, i).Count(j => j % 4 is 0 or 3), await ScalarAsync<long>(conn, $"select count(*) from {table}"));

                // Leave as much session state behind as possible.
                await ExecAsync(conn, "set search_path = pg_catalog");
                await ExecAsync(conn, "set statement_timeout = 12345");
                await ExecAsync(conn, "select set_config('proto.marker', 'dirty', false)");
                await ExecAsync(conn, "create temp table client_temp(x int)");
                Assert.True(await ScalarAsync<bool>(conn, $"select pg_try_advisory_lock({Invariant(4242 + i)})"));
                await ExecAsync(conn, $"listen {channel}");
                await ExecAsync(conn, "prepare client_stmt as select 1");
                await ExecAsync(conn, "declare client_cursor cursor with hold for select 1");
                switch (i % 4)
                {
                    case 0:
                        // Committed: survives.
                        await ExecAsync(conn, $"insert into public.{table} values ({Invariant(i)})");
                        break;
                    case 1:
                        // Leaves inside an open transaction: ROLLBACK before DISCARD ALL.
                        await ExecAsync(conn, "begin");
                        await ExecAsync(conn, $"insert into public.{table} values ({Invariant(i)})");
                        break;
                    case 2:
                        // Leaves inside a failed transaction.
                        await ExecAsync(conn, "begin");
                        await ExecAsync(conn, $"insert into public.{table} values ({Invariant(i)})");
                        await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(conn, "select 1/0"));
                        break;
                    default:
                        // Committed, then leaves as a different role.
                        await ExecAsync(conn, $"insert into public.{table} values ({Invariant(i)})");
                        await ExecAsync(conn, "set session authorization app");
                        Assert.Equal("app", await ScalarAsync(conn, "select current_user"));
                        break;
                }
            }

            Assert.Equal(1, proxy.Server.ServerCount);

            // The server agrees: the advisory locks were released, the backend is idle and not in a transaction.
            Assert.Equal("0", await _fixture.Primary.PsqlAsync(
                $"select count(*) from pg_locks where locktype = 'advisory' and pid = {Invariant(backendPid!.Value)}"));
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop table if exists {table}");
        }
    }

    [Fact]
    public async Task NpgsqlPreparedStatements_OfOneClient_DoNotCollideWithTheNextClientsOnTheSameBackend()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { DefaultPoolSize = 1 });
        int? pid = null;
        for (int i = 0; i < 3; i++)
        {
            // Each new physical Npgsql connection names its statements _p1, _p2, ... again.
            await using var conn = await proxy.OpenAsync();
            var backend = await ScalarAsync<int>(conn, "select pg_backend_pid()");
            pid ??= backend;
            Assert.Equal(pid, backend);

            await using var cmd = new NpgsqlCommand("select $1::int + 1", conn);
            cmd.Parameters.AddWithValue(i);
            await cmd.PrepareAsync();
            Assert.Equal(i + 1, await cmd.ExecuteScalarAsync());
            Assert.Equal(1L, await ScalarAsync<long>(conn, "select count(*) from pg_prepared_statements"));
        }
    }

    [Fact]
    public async Task ConcurrentClients_UpToPoolSize_GetDistinctBackends_ThenReuseThem()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { DefaultPoolSize = 3 });
        var first = new HashSet<int>();
        var conns = new List<NpgsqlConnection>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var conn = await proxy.OpenAsync();
                conns.Add(conn);
                first.Add(await ScalarAsync<int>(conn, "select pg_backend_pid()"));
            }

            Assert.Equal(3, first.Count);
        }
        finally
        {
            foreach (var c in conns)
            {
                await c.DisposeAsync();
            }
        }

        for (int i = 0; i < 6; i++)
        {
            await using var conn = await proxy.OpenAsync();
            Assert.Contains(await ScalarAsync<int>(conn, "select pg_backend_pid()"), first);
        }

        Assert.True(proxy.Server.ServerCount <= 3, $"{proxy.Server.ServerCount} server connections");
    }

    [Fact]
    public async Task ClientWaitsForBusyPool_ThenGetsTheReleasedBackend()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { DefaultPoolSize = 1 });
        var holder = await proxy.OpenAsync();
        var pid = await ScalarAsync<int>(holder, "select pg_backend_pid()");
        await ExecAsync(holder, "set application_name = 'holder'");

        // The second client cannot run anything while the only server is held; it proceeds once it is released.
        var waiter = Task.Run(async () =>
        {
            await using var conn = await proxy.OpenAsync();
            return (Pid: await ScalarAsync<int>(conn, "select pg_backend_pid()"), App: (string)(await ScalarAsync(conn, "show application_name"))!);
        });
        await Task.Delay(500);
        Assert.False(waiter.IsCompleted);
        await holder.DisposeAsync();

        var (waiterPid, app) = await waiter.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(pid, waiterPid);
        Assert.Equal(string.Empty, app);
    }
}
