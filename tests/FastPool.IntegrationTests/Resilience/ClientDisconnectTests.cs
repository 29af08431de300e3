using System.Diagnostics;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;

namespace FastPool.IntegrationTests.Resilience;

/// <summary>
/// A client vanishes mid-transaction or mid-query. The next client must get a clean server (no open
/// transaction, no leftover settings or temp tables) or a fresh one, never a half-used one.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ClientDisconnectTests
{
    public enum CloseKind
    {
        /// <summary>Npgsql's Dispose: a polite Terminate message, transaction still open.</summary>
        NpgsqlTerminate,

        /// <summary>Socket closed (FIN) without Terminate.</summary>
        SocketFin,

        /// <summary>Socket reset (SO_LINGER 0), as a killed client process would leave it.</summary>
        SocketReset,
    }

    private const string ChangeSessionSql =
        "SET statement_timeout = '12345ms'; CREATE TEMP TABLE a_temp(x int); BEGIN; INSERT INTO t VALUES (1)";

    private readonly PostgresFixture _fixture;

    public ClientDisconnectTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Theory]
    [InlineData(CloseKind.NpgsqlTerminate)]
    [InlineData(CloseKind.SocketFin)]
    [InlineData(CloseKind.SocketReset)]
    public async Task ClientGoneMidTransaction_RowRolledBack_NextClientGetsCleanSession(CloseKind kind)
    {
        var backend = _fixture.Primary;
        await using var db = await TempDatabase.CreateAsync(backend, "midtx");
        await Backend.ExecuteAsync(backend, "CREATE TABLE t(id int)", db.Name);
        await using var proxy = ProxyHost.Start(backend, c => c with { DefaultPoolSize = 1 });

        int pidA;
        if (kind == CloseKind.NpgsqlTerminate)
        {
            await using var a = await proxy.OpenAsync(db.Name);
            pidA = await ProxyChecks.BackendPidAsync(a);
            await using (var cmd = new NpgsqlCommand(ChangeSessionSql, a))
            {
                await cmd.ExecuteNonQueryAsync();
            }

            Assert.Equal(1L, await Backend.CountAsync(backend, db.Name, state: "idle in transaction%"));

            // Dispose without COMMIT: Npgsql sends Terminate while the transaction is open.
        }
        else
        {
            await using var a = await RawPgClient.ConnectAsync(proxy.Port);
            await a.LoginAsync(db.Name);
            pidA = int.Parse(await a.QueryScalarAsync("select pg_backend_pid()") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
            var reply = await a.QueryAsync(ChangeSessionSql);
            Assert.DoesNotContain(reply, m => m.Type == 'E');
            Assert.Equal('T', (char)reply[^1].Body[0]);
            Assert.Equal(1L, await Backend.CountAsync(backend, db.Name, state: "idle in transaction%"));
            if (kind == CloseKind.SocketReset)
            {
                a.AbortWithReset();
            }
        }

        // The open transaction is rolled back on the server, not left idle in transaction.
        await Wait.UntilAsync(
            async () => await Backend.CountAsync(backend, db.Name, state: "idle in transaction%") == 0,
            TimeSpan.FromSeconds(10),
            "no 'idle in transaction' backend left");
        await Backend.WaitIdleInPoolAsync(backend, pidA);
        Assert.Equal(0L, await RowCountAsync(db.Name));

        // B gets the same (pool size 1) server connection, and a clean session on it.
        await using var b = await proxy.OpenAsync(db.Name);
        Assert.Equal(pidA, await ProxyChecks.BackendPidAsync(b));
        Assert.Equal("0", await ProxyChecks.ScalarAsync(b, "SHOW statement_timeout"));
        Assert.Equal(true, await ProxyChecks.ScalarAsync(b, "select pg_current_xact_id_if_assigned() is null")); // A's write transaction is not carried over
        Assert.Equal(0L, await ProxyChecks.ScalarAsync(b, "select count(*) from pg_class where relname = 'a_temp'"));
        Assert.Equal(0L, await ProxyChecks.ScalarAsync(b, "select count(*) from t"));
        await ProxyChecks.ScalarAsync(b, "insert into t values (2)");
        Assert.Equal(1L, await RowCountAsync(db.Name));
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Theory]
    [InlineData(CloseKind.SocketFin)]
    [InlineData(CloseKind.SocketReset)]
    public async Task ClientGoneMidQuery_ServerConnectionClosedNotReused_NextClientWorks(CloseKind kind)
    {
        var backend = _fixture.Primary;
        await using var db = await TempDatabase.CreateAsync(backend, "midq");
        await using var proxy = ProxyHost.Start(backend, c => c with { DefaultPoolSize = 1 });

        int pidA;
        await using (var a = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await a.LoginAsync(db.Name);
            pidA = int.Parse(await a.QueryScalarAsync("select pg_backend_pid()") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
            await a.SendAsync(RawPgClient.Query("select pg_sleep(5)"));
            await Wait.UntilAsync(
                async () => await Backend.CountAsync(backend, db.Name, state: "active") == 1,
                TimeSpan.FromSeconds(10),
                "pg_sleep(5) running");
            if (kind == CloseKind.SocketReset)
            {
                a.AbortWithReset();
            }
        }

        // B must not wait for A's query (pool size 1, the only slot) nor get A's busy server.
        var sw = Stopwatch.StartNew();
        await using var b = await proxy.OpenAsync(db.Name);
        var pidB = await ProxyChecks.BackendPidAsync(b);
        sw.Stop();
        Assert.NotEqual(pidA, pidB);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(4), $"B was served only after {sw.Elapsed} (A's query takes 5 s)");
        Assert.Equal(42, await ProxyChecks.ScalarAsync(b, "select 42"));

        // The proxy really closed A's server socket: the backend ends once pg_sleep returns.
        await Wait.UntilAsync(async () => !await Backend.IsBackendAliveAsync(backend, pidA), TimeSpan.FromSeconds(15), $"A's backend {pidA} gone");
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    /// <summary>
    /// A client that gives up while queued for a server (its connect or command timeout fired, its process
    /// died) must stop counting against max_client_conn; otherwise the slot stays taken until the dead client
    /// reaches the head of the queue or query_wait_timeout (120 s by default) fires, and live clients get 53300.
    /// </summary>
    [Fact]
    public async Task ClientGoneWhileWaitingForServer_FreesItsMaxClientConnSlot()
    {
        var backend = _fixture.Primary;
        await using var db = await TempDatabase.CreateAsync(backend, "waitgone");
        await using var proxy = ProxyHost.Start(backend, c => c with { DefaultPoolSize = 1, MaxClientConn = 2 });

        await using var holder = await proxy.OpenAsync(db.Name);
        Assert.Equal(1, await ProxyChecks.ScalarAsync(holder, "select 1"));

        await using (var quitter = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await quitter.LoginAsync(db.Name);
            await quitter.SendAsync(RawPgClient.Query("select 1"));
            await Task.Delay(300);
            Assert.Equal(2, proxy.Server.ClientCount);
        }

        await Wait.UntilAsync(
            () => Task.FromResult(proxy.Server.ClientCount == 1),
            TimeSpan.FromSeconds(3),
            "the client that left the queue no longer counted (ClientCount back to 1)");
        await using var late = await proxy.OpenAsync(db.Name);
        Assert.Equal(1, await ProxyChecks.ScalarAsync(holder, "select 1"));
    }

    private async Task<long> RowCountAsync(string database)
    {
        await using var conn = new NpgsqlConnection(Backend.DirectConnectionString(_fixture.Primary, database));
        await conn.OpenAsync();
        return (long)(await ProxyChecks.ScalarAsync(conn, "select count(*) from t"))!;
    }
}
