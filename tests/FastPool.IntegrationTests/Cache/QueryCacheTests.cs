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
}
