using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using Npgsql;
using static FastPool.IntegrationTests.Cache.CacheSupport;

namespace FastPool.IntegrationTests.Cache;

/// <summary>
/// The query result cache in transaction pooling, through Npgsql against a real server. A hit is proven the way a
/// user would see it: the only server connection is held by another client's open transaction, so an answer can
/// only come from FastPool itself; a miss would wait for that connection (and here time out with 08P01/53300).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class QueryCacheTests
{
    private readonly PostgresFixture _fixture;

    public QueryCacheTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Every_repeat_of_a_read_is_a_hit_even_when_it_comes_before_the_server_is_handed_back()
    {
        // The client sees the answer (and sends its next request) before the server pump has handed the server back:
        // that request must still be looked up in the cache, not forwarded on the old server unseen. Back to back on
        // one connection, many times, so that window is hit on any transport.
        // Several clients at once keep the proxy's threads busy, which widens that window as a loaded machine does.
        await DirectAsync(_fixture, "drop table if exists qc_repeat; create table qc_repeat (v int); insert into qc_repeat values (7)");
        await using var host = Start(_fixture.Primary, poolSize: 4);
        await using (var first = await OpenAsync(host))
        {
            Assert.Equal("7", await ScalarAsync(first, "select v from qc_repeat"));
        }

        long hits = host.Server.CacheStats.Hits;
        const int Clients = 6, Repeats = 300;
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(async _ =>
        {
            await using var conn = await OpenAsync(host);
            for (int i = 0; i < Repeats; i++)
            {
                Assert.Equal("7", await ScalarAsync(conn, "select v from qc_repeat"));
            }
        }));

        Assert.Equal(hits + (Clients * Repeats), host.Server.CacheStats.Hits);
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task A_repeated_select_is_answered_without_a_server_and_writes_invalidate_it()
    {
        await DirectAsync(_fixture, "drop table if exists qc_basic; create table qc_basic (id int primary key, v text); insert into qc_basic values (1, 'one'), (2, 'two')");
        await using var host = Start(_fixture.Primary, queryWait: TimeSpan.FromSeconds(2));
        await using var reader = await OpenAsync(host);
        await using var holder = await OpenAsync(host);

        // Simple protocol (no parameters: Npgsql sends... the extended protocol; psql-like clients the simple one).
        Assert.Equal("one", await ScalarAsync(reader, "select v from qc_basic where id = 1"));
        var afterMiss = host.Server.CacheStats;
        Assert.Equal(1, afterMiss.Entries);

        // The only server connection is now busy in another client's transaction.
        await ExecAsync(holder, "begin");
        await ExecAsync(holder, "select 1");
        Assert.Equal("one", await ScalarAsync(reader, "select v from qc_basic where id = 1"));
        Assert.Equal(afterMiss.Hits + 1, host.Server.CacheStats.Hits);

        // A statement not in the cache needs the server: it waits, and query_wait_timeout ends the wait.
        var waited = await Assert.ThrowsAnyAsync<Exception>(() => ScalarAsync(reader, "select v from qc_basic where id = 2"));
        Assert.NotNull(waited);

        // The holder writes and commits: the cached result is gone and the next read sees the new row.
        await ExecAsync(holder, "update qc_basic set v = 'uno' where id = 1");
        await ExecAsync(holder, "commit");
        await using var reader2 = await OpenAsync(host);
        Assert.Equal("uno", await ScalarAsync(reader2, "select v from qc_basic where id = 1"));
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    /// <summary>
    /// Session pooling: the client keeps its server, so a hit is proven on that server: the backend's last statement
    /// (pg_stat_activity.query, read directly) is still the one sent before the cached read.
    /// </summary>
    [Fact]
    public async Task Session_pooling_answers_from_the_cache_until_the_session_changes_a_setting()
    {
        await DirectAsync(_fixture, "drop table if exists qc_sess; create table qc_sess (id int primary key, v text); insert into qc_sess values (1, 'one')");
        await using var host = Start(_fixture.Primary, mode: Proxy.Configuration.PoolMode.Session, poolSize: 3);
        await using var conn = await OpenAsync(host);
        const string Read = "select v from qc_sess where id = 1";

        // The first sight of qc_sess asks the catalog (in the background in session pooling): a later read is stored.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (host.Server.CacheStats.Stores == 0)
        {
            Assert.Equal("one", await ScalarAsync(conn, Read));
            Assert.True(DateTime.UtcNow < deadline, "the session's read was never cached");
            await Task.Delay(20);
        }

        string pid = await ScalarAsync(conn, "select pg_backend_pid()");
        long hits = host.Server.CacheStats.Hits;
        Assert.Equal("one", await ScalarAsync(conn, Read));
        Assert.Equal(hits + 1, host.Server.CacheStats.Hits);
        Assert.Equal("select pg_backend_pid()", await LastStatementAsync(pid));

        // Another client's write (its own session) invalidates it.
        await using (var writer = await OpenAsync(host))
        {
            await ExecAsync(writer, "update qc_sess set v = 'uno' where id = 1");
        }

        Assert.Equal("uno", await ScalarAsync(conn, Read));

        // A session that SETs anything stops using the cache: its server answers (search_path could change the table read).
        await ExecAsync(conn, "set search_path = public");
        hits = host.Server.CacheStats.Hits;
        Assert.Equal("uno", await ScalarAsync(conn, Read));
        Assert.Equal("uno", await ScalarAsync(conn, Read));
        Assert.Equal(hits, host.Server.CacheStats.Hits);
        Assert.Equal(Read, await LastStatementAsync(pid));
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    private async Task<string> LastStatementAsync(string pid)
    {
        await using var direct = new NpgsqlConnection(_fixture.SuperuserConnectionString("postgres"));
        await direct.OpenAsync();
        return await ScalarAsync(direct, "select query from pg_stat_activity where pid = " + pid);
    }
}
