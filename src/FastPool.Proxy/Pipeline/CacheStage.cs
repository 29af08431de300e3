namespace FastPool.Proxy.Pipeline;

/// <summary>
/// The query result cache as a stage: a request whose complete response is cached is answered without a server
/// (the session sends the stored bytes); otherwise the pipeline goes on to take one, and the session may capture
/// the response. Only requests the session marked as candidates (a read-only SELECT outside a transaction, see
/// ClientSession.Cache) are looked up.
/// </summary>
internal sealed class CacheStage(ProxyRuntime runtime) : IQueryStage
{
    public ValueTask InvokeAsync(QueryContext context, QueryDelegate next)
    {
        if (context.CacheKeyLength > 0 && runtime.Cache is { } cache)
        {
            var hit = cache.TryGet(context.CacheKey.AsSpan(0, context.CacheKeyLength));
            if (hit is not null)
            {
                context.CachedResponse = hit;
                return ValueTask.CompletedTask;
            }

            context.CaptureFrom = cache.BeginCapture();
        }

        return next(context);
    }
}
