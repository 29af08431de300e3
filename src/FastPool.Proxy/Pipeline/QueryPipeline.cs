using FastPool.Proxy.Pooling;
using FastPool.Proxy.Topology;

namespace FastPool.Proxy.Pipeline;

/// <summary>
/// The order of the query stages, fixed in one place: pause gate -> route -> (cache) -> (failover/retry) -> acquire.
/// Routing, cache and failover plug in here as they land; today routing sends everything to the first node.
/// </summary>
internal static class QueryPipeline
{
    public static QueryDelegate Build(PoolManager pools, IReadOnlyList<IQueryStage> stages)
    {
        QueryDelegate terminal = ctx => AcquireServerAsync(pools, ctx);
        QueryDelegate next = terminal;
        for (int i = stages.Count - 1; i >= 0; i--)
        {
            var stage = stages[i];
            var inner = next;
            next = ctx => stage.InvokeAsync(ctx, inner);
        }

        return next;
    }

    /// <summary>The default stage list for this release.</summary>
    /// <remarks>The pause gate comes first: a paused database must not even be routed, let alone open a server.</remarks>
    public static IReadOnlyList<IQueryStage> DefaultStages(ProxyRuntime runtime) =>
        [new PauseStage(runtime.Control), new FirstNodeRoutingStage(), new FailoverStage(runtime)];

    private static async ValueTask AcquireServerAsync(PoolManager pools, QueryContext ctx)
    {
        var node = ctx.TargetNode ?? ctx.Topology.Primary ?? ctx.Topology.Nodes[0];

        // A session asks for the same pool transaction after transaction: remembered, it costs no lookup (and no
        // key string for a fallback database) until a reload retires it, or a failover moves the primary.
        var pool = ctx.LastPool;
        if (pool is null || pool.Node != node || pool.Retired)
        {
            pool = pools.GetPool(ctx.Session.Database, ctx.Session.DatabaseName, ctx.Session.User, node);
            ctx.LastPool = pool;
        }

        ctx.Server = await pool.AcquireAsync(ctx.Aborted).ConfigureAwait(false);
    }
}

/// <summary>Sends every query to the database's primary (the only routing the foundation has); none while a failover runs.</summary>
internal sealed class FirstNodeRoutingStage : IQueryStage
{
    public ValueTask InvokeAsync(QueryContext context, QueryDelegate next)
    {
        context.TargetNode ??= context.Topology.Primary;
        return next(context);
    }
}
