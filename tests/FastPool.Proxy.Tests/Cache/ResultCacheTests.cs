using System.Text;
using FastPool.Cache;

namespace FastPool.Proxy.Tests.Cache;

public sealed class ResultCacheTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Least_recently_used_entries_are_evicted_over_the_budget()
    {
        // Each entry: key 2 + response 100 + overhead 160 = 262 bytes; three fit in 800, not four.
        var cache = new ResultCache(new CacheLimits(800, 1000, TimeSpan.Zero));
        Assert.True(cache.TryAdd(B("k1"), new byte[100], "db", ["t"], cache.BeginCapture()));
        Assert.True(cache.TryAdd(B("k2"), new byte[100], "db", ["t"], cache.BeginCapture()));
        Assert.True(cache.TryAdd(B("k3"), new byte[100], "db", ["t"], cache.BeginCapture()));
        Assert.NotNull(cache.TryGet(B("k1")));
        Assert.True(cache.TryAdd(B("k4"), new byte[100], "db", ["t"], cache.BeginCapture()));

        Assert.NotNull(cache.TryGet(B("k1")));
        Assert.Null(cache.TryGet(B("k2")));
        Assert.Equal(1, cache.Stats.Evictions);
        Assert.Equal(3, cache.Stats.Entries);
    }

    [Fact]
    public void Oversized_responses_and_reads_that_raced_a_write_are_not_stored()
    {
        var cache = new ResultCache(new CacheLimits(1 << 20, 50, TimeSpan.Zero));
        Assert.False(cache.TryAdd(B("big"), new byte[51 + 6], "db", ["t"], cache.BeginCapture()));

        long from = cache.BeginCapture();
        cache.Invalidate("db", ["t"]);
        Assert.False(cache.TryAdd(B("raced"), new byte[10], "db", ["t", "u"], from));
        Assert.True(cache.TryAdd(B("other"), new byte[10], "db", ["u"], from));
        Assert.True(cache.TryAdd(B("otherdb"), new byte[10], "db2", ["t"], from));
    }

    [Fact]
    public void Invalidation_removes_the_entries_of_the_relation_in_that_database_only()
    {
        var cache = new ResultCache(CacheLimits.Default);
        cache.TryAdd(B("a"), new byte[1], "db", ["t", "u"], 0);
        cache.TryAdd(B("b"), new byte[1], "db", ["u"], 0);
        cache.TryAdd(B("c"), new byte[1], "db2", ["t"], 0);
        Assert.Equal(1, cache.Invalidate("db", ["t"]));
        Assert.Null(cache.TryGet(B("a")));
        Assert.NotNull(cache.TryGet(B("b")));
        Assert.NotNull(cache.TryGet(B("c")));
        Assert.Equal(1, cache.InvalidateDatabase("db"));
        Assert.Equal(1, cache.Purge(null));
        Assert.Equal(0, cache.Stats.Entries);
        Assert.Equal(0, cache.Stats.Bytes);
    }

    [Fact]
    public void Entries_expire()
    {
        var time = new ManualTime();
        var cache = new ResultCache(new CacheLimits(1 << 20, 1000, TimeSpan.FromSeconds(10)), time);
        cache.TryAdd(B("a"), new byte[1], "db", ["t"], 0);
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.NotNull(cache.TryGet(B("a")));
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(cache.TryGet(B("a")));
        Assert.Equal(0, cache.Stats.Entries);
    }

    [Fact]
    public void A_nearly_full_cache_admits_a_new_key_on_its_second_miss_only()
    {
        // Three entries of 262 bytes fill 800 to within a sixteenth.
        var cache = new ResultCache(new CacheLimits(800, 1000, TimeSpan.Zero));
        Assert.Null(cache.TryGet(B("k1"), out bool admit));
        Assert.True(admit);
        cache.TryAdd(B("k1"), new byte[100], "db", ["t"], cache.BeginCapture());
        cache.TryAdd(B("k2"), new byte[100], "db", ["t"], cache.BeginCapture());
        Assert.Null(cache.TryGet(B("k3"), out admit));
        Assert.True(admit);
        cache.TryAdd(B("k3"), new byte[100], "db", ["t"], cache.BeginCapture());

        Assert.Null(cache.TryGet(B("one-off"), out admit));
        Assert.False(admit);
        Assert.Null(cache.TryGet(B("one-off"), out admit));
        Assert.True(admit);
        Assert.Equal(1, cache.Stats.Declined);

        // Room again (an invalidation emptied it): every miss is admitted.
        cache.Invalidate("db", ["t"]);
        Assert.Null(cache.TryGet(B("another"), out admit));
        Assert.True(admit);
    }

    [Fact]
    public void Compact_prefixes_are_one_per_distinct_text_and_never_shared_between_texts()
    {
        var cache = new ResultCache(CacheLimits.Default);
        var a = cache.CompactPrefix("db\0alice\0search_path=public\0");
        var b = cache.CompactPrefix("db\0bob\0search_path=public\0");
        Assert.Same(a, cache.CompactPrefix("db\0alice\0search_path=public\0"));
        Assert.False(a.AsSpan().SequenceEqual(b));
        Assert.Equal(5, a.Length);
    }

    private sealed class ManualTime : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
