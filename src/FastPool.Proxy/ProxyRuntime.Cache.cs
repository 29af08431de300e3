using FastPool.Cache;
using FastPool.Proxy.Configuration;

namespace FastPool.Proxy;

internal sealed partial class ProxyRuntime
{
    private volatile ResultCache? _cache;

    /// <summary>LISTENs for the invalidation triggers' notifications, per server database with cached results (none until one is cached).</summary>
    internal Sessions.CacheListener CacheListener { get; }

    /// <summary>Stops the cache listeners (FastPool is shutting down).</summary>
    internal ValueTask StopCacheListenerAsync() => CacheListener.DisposeAsync();

    /// <summary>The query result cache; null while memory_cache_enabled is off.</summary>
    internal ResultCache? Cache => _cache;

    /// <summary>
    /// At start and on each reload: memory_cache_enabled turned on creates the store, turned off drops it with
    /// everything in it (entries could go stale while nothing invalidates them), new limits apply at once.
    /// </summary>
    private void ApplyCacheConfig(ProxyConfig config)
    {
        var settings = config.FastPool.Cache;
        if (!settings.Enabled)
        {
            _cache = null;
            return;
        }

        if (_cache is { } current)
        {
            current.Reconfigure(settings.Limits);
            return;
        }

        _cache = new ResultCache(settings.Limits, Time);
    }
}
