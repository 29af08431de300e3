namespace FastPool.Proxy.Pipeline;

/// <summary>
/// The query result cache as a stage: a request whose complete response is cached is answered without a server
/// (the session sends the stored bytes); otherwise the pipeline goes on to take one, and the session may capture
/// the response. Only requests the session marked as candidates (a read-only SELECT outside a transaction, see
/// ClientSession.Cache) are looked up. In this process's memory the lookup completes synchronously; in a shared
/// Redis store (memqcache_method = redis) it is one round trip, and an unreachable Redis is a miss.
/// </summary>
internal sealed class CacheStage(ProxyRuntime runtime) : IQueryStage
{
    public ValueTask InvokeAsync(QueryContext context, QueryDelegate next)
    {
        if (context.CacheKeyLength > 0 && runtime.Cache is { } cache)
        {
            if (runtime.SharedCache is { } shared)
            {
                return SharedAsync(context, next, cache, shared);
            }

            var hit = cache.TryGet(context.CacheKey.AsSpan(0, context.CacheKeyLength), out bool admit);
            if (hit is not null)
            {
                context.CachedResponse = hit;
                return ValueTask.CompletedTask;
            }

            // A miss the cache would not store (it is nearly full and the key is new): no capture, no analysis.
            if (admit)
            {
                context.CaptureFrom = cache.BeginCapture();
            }
        }

        return next(context);
    }

    private static async ValueTask SharedAsync(QueryContext context, QueryDelegate next, Cache.ResultCache cache, Cache.RedisResultStore shared)
    {
        var lookup = await shared.LookupAsync(context.CacheKey.AsMemory(0, context.CacheKeyLength)).ConfigureAwait(false);
        cache.CountLookup(lookup.Response is not null);
        if (lookup.Response is { } hit)
        {
            context.CachedResponse = hit;
            return;
        }

        // Redis unreachable: no capture (nothing could be stored, and nothing said since when it would be valid).
        context.CaptureFrom = lookup.CaptureFrom;
        await next(context).ConfigureAwait(false);
    }
}
