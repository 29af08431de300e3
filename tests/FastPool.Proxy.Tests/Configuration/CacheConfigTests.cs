using System.Text;
using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Tests.Configuration;

public class CacheConfigTests
{
    private static ConfigLoadResult Load(string fastpool) =>
        ConfigLoader.LoadFromText($"[databases]\ndb = host=a port=5432\n[pgbouncer]\n[fastpool]\n{fastpool}\n", "pgbouncer.ini", Path.GetTempPath());

    [Fact]
    public void Defaults_are_pgpools_and_the_cache_is_off()
    {
        var c = Load("").Config!.FastPool.Cache;
        Assert.False(c.Enabled);
        Assert.Equal(CacheMethod.Memory, c.Method);
        Assert.Equal(64L * 1024 * 1024, c.Limits.TotalSize);
        Assert.Equal(400 * 1024, c.Limits.MaxEntrySize);
        Assert.Equal(TimeSpan.Zero, c.Limits.Expire);
    }

    [Fact]
    public void Every_cache_key_is_read_with_pgpool_spellings()
    {
        var result = Load("""
            memory_cache_enabled = on
            memqcache_method = 'shmem'
            memqcache_total_size = 128MB
            memqcache_maxcache = 8kB
            memqcache_expire = 60
            cache_safe_memqcache_table_list = 'public.v_Sales, "Mixed"'
            cache_unsafe_memqcache_table_list = audit_log
            memqcache_volatile_function_list = my_clock
            """);
        Assert.True(result.Success, string.Join(Environment.NewLine, result.Errors));
        var c = result.Config!.FastPool.Cache;
        Assert.True(c.Enabled);
        Assert.Equal(CacheMethod.Memory, c.Method);
        Assert.Equal(128L * 1024 * 1024, c.Limits.TotalSize);
        Assert.Equal(8 * 1024, c.Limits.MaxEntrySize);
        Assert.Equal(TimeSpan.FromSeconds(60), c.Limits.Expire);
        Assert.Contains("v_sales", c.SafeTables);
        Assert.Contains("Mixed", c.SafeTables);
        Assert.Contains("audit_log", c.UnsafeTables);
        Assert.True(c.VolatileFunctions.Contains(Encoding.UTF8.GetBytes("MY_CLOCK")));
        Assert.True(c.VolatileFunctions.Contains(Encoding.UTF8.GetBytes("now")));
    }

    [Fact]
    public void Bad_values_are_errors_and_redis_takes_its_server()
    {
        Assert.False(Load("memqcache_method = disk").Success);
        Assert.False(Load("memqcache_total_size = lots").Success);
        Assert.False(Load("memory_cache_enabled = maybe").Success);
        var redis = Load("memqcache_method = redis\nmemqcache_redis = 'cache.local:6380'");
        Assert.True(redis.Success);
        Assert.Empty(redis.Warnings);
        Assert.Equal(CacheMethod.Redis, redis.Config!.FastPool.Cache.Method);
        Assert.Equal("cache.local:6380", redis.Config.FastPool.Cache.Redis);
    }
}
