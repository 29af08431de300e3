namespace FastPool.Cache;

/// <summary>What SHOW POOL_CACHE and /metrics report; a snapshot.</summary>
public readonly record struct CacheStats(long Hits, long Misses, long Entries, long Bytes, long Evictions, long Invalidations, long Stores, long Declined);
