using FastPool.Cache;
using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Cache.CacheInvalidationTests;
using static FastPool.IntegrationTests.Cache.CacheSupport;

namespace FastPool.IntegrationTests.Cache;

/// <summary>
/// memqcache_method = redis: two in-process FastPools share one real redis-server (started by the class fixture).
/// A hit through a FastPool that never ran the statement is proven as in <see cref="QueryCacheTests"/>: its only
/// server connection is held in another client's transaction, so the answer cannot come from PostgreSQL.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RedisCacheTests : IClassFixture<RedisServer>
{
    private readonly PostgresFixture _fixture;
    private readonly RedisServer _redis;

    public RedisCacheTests(PostgresFixture fixture, RedisServer redis)
    {
        _fixture = fixture;
        _redis = redis;
    }

    [RedisFact]
    public async Task Two_fastpools_on_one_redis_share_results_and_a_write_through_either_invalidates_the_other()
    {
        await DirectAsync(_fixture, "drop table if exists rc_shared; create table rc_shared (id int primary key, v text); insert into rc_shared values (1, 'one')");
        await using var a = StartShared(TimeSpan.FromSeconds(2));
        await using var b = StartShared(TimeSpan.FromSeconds(2));
        await using var onA = await OpenAsync(a);
        await using var onB = await OpenAsync(b);
        const string Read = "select v from rc_shared where id = 1";
        await CachedThroughAsync(a, onA, Read, "one");

        // B reaches Redis too (another statement of its own is cached), then its only server is taken away.
        await CachedThroughAsync(b, onB, Read + " and true", "one");
        await using (var holder = await OpenAsync(b))
        {
            await ExecAsync(holder, "begin");
            await ExecAsync(holder, "select 1");
            long hits = b.Server.CacheStats.Hits;
            Assert.Equal("one", await RowTextAsync(onB, Read));
            Assert.Equal(hits + 1, b.Server.CacheStats.Hits);
            await ExecAsync(holder, "commit");
        }

        // A write through A, in an explicit transaction: B's next read is the committed value, from PostgreSQL.
        long remoteInvalidations = b.Server.CacheStats.Invalidations;
        await ExecAsync(onA, "begin");
        await ExecAsync(onA, "update rc_shared set v = 'uno' where id = 1");
        await ExecAsync(onA, "commit");
        Assert.Equal("uno", await RowTextAsync(onB, Read));

        // ... and B heard of it on the pub/sub channel (its own counters).
        await EventuallyAsync(() => b.Server.CacheStats.Invalidations > remoteInvalidations, "B never received A's invalidation");

        // The other way round: A caches the new value, a write through B makes A read the next one.
        await CachedThroughAsync(a, onA, Read, "uno");
        await ExecAsync(onB, "update rc_shared set v = 'eins' where id = 1");
        Assert.Equal("eins", await RowTextAsync(onA, Read));

        // What an operator sees: the store and its server in SHOW CONFIG, B's hits in SHOW POOL_CACHE.
        var config = await AdminSupport.ShowAsync(b.Port, "SHOW CONFIG");
        Assert.Equal("redis", config.Value(config.Single("key", "memqcache_method"), "value"));
        Assert.Equal(_redis.Endpoint, config.Value(config.Single("key", "memqcache_redis"), "value"));
        var cache = await AdminSupport.ShowAsync(b.Port, "SHOW POOL_CACHE");
        Assert.Equal("redis", cache.Value(cache.Rows[0], "method"));
        Assert.True(cache.Int(cache.Rows[0], "hits") >= 2);
        ProxyChecks.AssertNoUnexpectedErrors(a);
        ProxyChecks.AssertNoUnexpectedErrors(b);
    }

    [RedisFact]
    public async Task With_redis_stopped_postgres_answers_and_the_cache_resumes_when_redis_is_back()
    {
        await DirectAsync(_fixture, "drop table if exists rc_down; create table rc_down (v int); insert into rc_down values (1)");
        await using var host = StartShared(TimeSpan.FromSeconds(30));
        await using var conn = await OpenAsync(host);
        const string Read = "select v from rc_down";
        await CachedThroughAsync(host, conn, Read, "1");

        await _redis.StopAsync();
        try
        {
            // The cached read, a write and the read after it: all answered, by PostgreSQL, without an error.
            Assert.Equal("1", await RowTextAsync(conn, Read));
            await ExecAsync(conn, "update rc_down set v = 2");
            Assert.Equal("2", await RowTextAsync(conn, Read));
            Assert.Equal("2", await RowTextAsync(conn, Read));
            Assert.Contains(host.Logs, line => line.Contains("unreachable", StringComparison.Ordinal) && line.Contains(_redis.Endpoint, StringComparison.Ordinal));
        }
        finally
        {
            await _redis.StartAsync();
        }

        await CachedThroughAsync(host, conn, Read, "2");
        Assert.Contains(host.Logs, line => line.Contains("answers again", StringComparison.Ordinal));
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    /// <summary>
    /// The store's rules, straight against Redis: a response captured before an invalidation of something it read is
    /// never served (refused when stored, or found stale when looked up), and a lost version key makes a miss.
    /// </summary>
    [RedisFact]
    public async Task The_store_never_serves_a_response_older_than_an_invalidation_of_what_it_read()
    {
        await using var store = new RedisResultStore(_redis.Endpoint);
        const string Database = "127.0.0.1:1/rc_rules";
        byte[] Key(string request) => System.Text.Encoding.UTF8.GetBytes(Database + "\0user\0state\0" + request);
        byte[] response = [1, 2, 3];
        var deadline = DateTime.UtcNow.AddSeconds(10);
        long? from;
        while ((from = (await store.LookupAsync(Key("a"))).CaptureFrom) is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the store never reached Redis");
            await Task.Delay(20);
        }

        // Captured, then its table written: the store refuses it.
        await store.InvalidateAsync(Database, ["t1"]);
        Assert.True(store.Store(Key("a"), response, ["t1"], from.Value, TimeSpan.Zero));
        await AssertMissAsync(store, Key("a"));

        // Captured after: stored and served, until t1 (or the whole database) is invalidated.
        Assert.True(store.Store(Key("b"), response, ["t1", "t2"], (await store.LookupAsync(Key("b"))).CaptureFrom!.Value, TimeSpan.Zero));
        await AssertHitAsync(store, Key("b"));
        await store.InvalidateAsync(Database, ["t2"]);
        await AssertMissAsync(store, Key("b"));
        Assert.True(store.Store(Key("c"), response, ["t1"], (await store.LookupAsync(Key("c"))).CaptureFrom!.Value, TimeSpan.Zero));
        await AssertHitAsync(store, Key("c"));
        await store.InvalidateAsync(Database, null);
        await AssertMissAsync(store, Key("c"));

        // An evicted version key (as Redis's maxmemory policy may do): a miss, never a stale hit.
        Assert.True(store.Store(Key("d"), response, ["t3"], (await store.LookupAsync(Key("d"))).CaptureFrom!.Value, TimeSpan.Zero));
        await AssertHitAsync(store, Key("d"));
        await RedisCommandAsync("DEL", "fastpool:v:" + Database + "\0t3");
        await AssertMissAsync(store, Key("d"));
    }

    private static async Task AssertHitAsync(RedisResultStore store, byte[] key)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while ((await store.LookupAsync(key)).Response is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "a fresh response was not stored");
            await Task.Delay(10);
        }
    }

    private static async Task AssertMissAsync(RedisResultStore store, byte[] key)
    {
        // A store in flight lands before a later command on the same connection: one lookup after it is enough.
        var lookup = await store.LookupAsync(key);
        Assert.Null(lookup.Response);
        Assert.NotNull(lookup.CaptureFrom);
    }

    /// <summary>One command in RESP (the Redis protocol), for what the store itself never does.</summary>
    private async Task RedisCommandAsync(params string[] args)
    {
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, _redis.Port);
        var stream = client.GetStream();
        var command = new System.Text.StringBuilder("*" + args.Length + "\r\n");
        foreach (var arg in args)
        {
            command.Append('$').Append(System.Text.Encoding.UTF8.GetByteCount(arg)).Append("\r\n").Append(arg).Append("\r\n");
        }

        await stream.WriteAsync(System.Text.Encoding.UTF8.GetBytes(command.ToString()));
        var buffer = new byte[64];
        Assert.True(await stream.ReadAsync(buffer) > 0);
    }

    /// <summary>A transaction-pooling FastPool with one server connection, caching in the class's Redis, with an admin user.</summary>
    private ProxyHost StartShared(TimeSpan queryWait) =>
        ProxyHost.Start(_fixture.Primary, c => c with
        {
            PoolMode = PoolMode.Transaction,
            DefaultPoolSize = 1,
            QueryWaitTimeout = queryWait,
            AdminUsers = [AdminSupport.Admin],
            FastPool = c.FastPool with { Cache = new CacheSettings { Enabled = true, Method = CacheMethod.Redis, Redis = _redis.Endpoint } },
        });

    /// <summary>
    /// Reads until a read is answered from the cache (the hit counter moves) with <paramref name="expected"/>: the
    /// FastPool connects to Redis in the background, and stores without making the client wait.
    /// </summary>
    private static async Task CachedThroughAsync(ProxyHost host, NpgsqlConnection conn, string read, string expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            long hits = host.Server.CacheStats.Hits;
            Assert.Equal(expected, await RowTextAsync(conn, read));
            if (host.Server.CacheStats.Hits > hits)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"'{read}' was never answered from Redis: " + string.Join("\n", host.Logs.TakeLast(5)));
            await Task.Delay(50);
        }
    }

    private static async Task EventuallyAsync(Func<bool> condition, string message)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, message);
            await Task.Delay(20);
        }
    }
}
