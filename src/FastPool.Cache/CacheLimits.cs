namespace FastPool.Cache;

/// <summary>The sizes and lifetime that bound the result cache (Pgpool-II's memqcache_* keys).</summary>
/// <param name="TotalSize">memqcache_total_size: bytes of all entries together; the least recently used go first.</param>
/// <param name="MaxEntrySize">memqcache_maxcache: a response larger than this is not cached.</param>
/// <param name="Expire">memqcache_expire: how long an entry lives (zero: until invalidated or evicted).</param>
public sealed record CacheLimits(long TotalSize, int MaxEntrySize, TimeSpan Expire)
{
    public static CacheLimits Default { get; } = new(64L * 1024 * 1024, 400 * 1024, TimeSpan.Zero);
}
