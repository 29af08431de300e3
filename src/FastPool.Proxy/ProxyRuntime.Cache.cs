using FastPool.Cache;
using FastPool.Proxy.Configuration;

namespace FastPool.Proxy;

internal sealed partial class ProxyRuntime
{
    private volatile ResultCache? _cache;
    private volatile RedisResultStore? _sharedCache;

    /// <summary>LISTENs for the invalidation triggers' notifications, per server database with cached results (none until one is cached).</summary>
    internal Sessions.CacheListener CacheListener { get; }

    /// <summary>Stops the cache listeners and the Redis connection (FastPool is shutting down).</summary>
    internal async ValueTask StopCacheListenerAsync()
    {
        await CacheListener.DisposeAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref _sharedCache, null) is { } shared)
        {
            await shared.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The query result cache; null while memory_cache_enabled is off. With memqcache_method = redis it keeps no
    /// entries itself (those are in <see cref="SharedCache"/>), only the catalog's answers and the counters.
    /// </summary>
    internal ResultCache? Cache => _cache;

    /// <summary>The Redis store shared with other FastPool instances (memqcache_method = redis); null otherwise.</summary>
    internal RedisResultStore? SharedCache => _sharedCache;

    /// <summary>
    /// At start and on each reload: memory_cache_enabled turned on creates the store, turned off drops it with
    /// everything in it (entries could go stale while nothing invalidates them), new limits apply at once. A new
    /// memqcache_method or memqcache_redis replaces the Redis connection.
    /// </summary>
    private void ApplyCacheConfig(ProxyConfig config)
    {
        var settings = config.FastPool.Cache;
        if (!settings.Enabled)
        {
            _cache = null;
            ReplaceSharedCache(null);
            return;
        }

        if (_cache is { } current)
        {
            current.Reconfigure(settings.Limits);
        }
        else
        {
            // Every invalidation made here reaches the other instances through Redis (the awaited one at a
            // transaction's end is sent by the session itself, before the client hears of the commit).
            _cache = new ResultCache(settings.Limits, Time)
            {
                Invalidated = (database, relations) => _ = _sharedCache?.InvalidateAsync(database, relations?.ToArray()),
            };
        }

        if (settings.Method != CacheMethod.Redis)
        {
            ReplaceSharedCache(null);
        }
        else if (settings.Redis is not { } redis)
        {
            Log.CacheRedisMissing(Logger);
            ReplaceSharedCache(null);
        }
        else if (_sharedCache?.Configuration != redis)
        {
            ReplaceSharedCache(new RedisResultStore(redis)
            {
                AvailabilityChanged = (reachable, reason) =>
                {
                    if (reachable)
                    {
                        Log.CacheRedisReachable(Logger, redis);
                    }
                    else
                    {
                        Log.CacheRedisUnreachable(Logger, redis, reason);
                    }
                },
                RemoteInvalidation = (database, relations) =>
                {
                    // Another instance's write: the entries are in Redis already invalidated; this keeps the local
                    // bookkeeping (counters, what the catalog said after a DO or CALL) in step.
                    if (relations is null)
                    {
                        _cache?.InvalidateDatabase(database, share: false);
                    }
                    else
                    {
                        _cache?.Invalidate(database, relations, share: false);
                    }
                },
            });
        }
    }

    private void ReplaceSharedCache(RedisResultStore? next)
    {
        if (Interlocked.Exchange(ref _sharedCache, next) is { } old && old != next)
        {
            _ = old.DisposeAsync().AsTask();
        }
    }
}
