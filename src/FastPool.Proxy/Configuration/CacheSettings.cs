using FastPool.Cache;
using FastPool.Routing.Classification;

namespace FastPool.Proxy.Configuration;

/// <summary>Where cached results live (memqcache_method).</summary>
public enum CacheMethod
{
    /// <summary>In this process.</summary>
    Memory,

    /// <summary>In a Redis server shared by several FastPool instances (memqcache_redis).</summary>
    Redis,
}

/// <summary>
/// The [fastpool] keys of the query result cache, with Pgpool-II's names and meaning (memory_cache_enabled,
/// memqcache_*; cache_safe/unsafe_memqcache_table_list).
/// </summary>
public sealed record CacheSettings
{
    /// <summary>memory_cache_enabled: results of read-only SELECTs are cached (every pooling mode).</summary>
    public bool Enabled { get; init; }

    /// <summary>memqcache_method.</summary>
    public CacheMethod Method { get; init; } = CacheMethod.Memory;

    /// <summary>memqcache_redis = HOST:PORT (memqcache_method = redis).</summary>
    public string? Redis { get; init; }

    /// <summary>memqcache_total_size, memqcache_maxcache (bytes) and memqcache_expire (seconds; 0 = no expiry).</summary>
    public CacheLimits Limits { get; init; } = CacheLimits.Default;

    /// <summary>cache_safe_memqcache_table_list: relations (views too) cached even when the catalog says otherwise.</summary>
    public IReadOnlySet<string> SafeTables { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>cache_unsafe_memqcache_table_list: relations never cached.</summary>
    public IReadOnlySet<string> UnsafeTables { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>memqcache_volatile_function_list (added to FastPool's built-in list): a SELECT calling one is never cached.</summary>
    public FunctionList VolatileFunctions { get; init; } = CacheClassifier.DefaultVolatileFunctions;
}
