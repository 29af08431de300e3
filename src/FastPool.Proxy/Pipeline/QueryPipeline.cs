using FastPool.Proxy.Pooling;
using FastPool.Proxy.Topology;

namespace FastPool.Proxy.Pipeline;

/// <summary>
/// The order of the query stages, fixed in one place: pause gate -> cache -> route -> failover -> acquire.
/// Routing picks the node (a standby for a read, the current primary otherwise; none while a failover has no
/// primary yet), and the failover stage then waits for the new primary or confirms a node it cannot reach.
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
    /// <remarks>
    /// The pause gate comes first: a paused database must not even be routed, let alone open a server. Failover
    /// comes after routing: it handles the node routing chose, and the case where routing found no primary. The cache
    /// comes before routing: a hit needs no node, and must not count as a read sent to one.
    /// </remarks>
    public static IReadOnlyList<IQueryStage> DefaultStages(ProxyRuntime runtime) =>
        [new PauseStage(runtime.Control, () => runtime.Config.QueryWaitTimeout, runtime.Time), new CacheStage(runtime), new RoutingStage(runtime), new FailoverStage(runtime)];

    private static ValueTask AcquireServerAsync(PoolManager pools, QueryContext ctx)
    {
        var node = ctx.TargetNode ?? ctx.Topology.Primary ?? ctx.Topology.Nodes[0];

        // A session asks for the same pools transaction after transaction: remembered per node, they cost no lookup
        // (and no key string for a fallback database) until a reload retires them.
        var known = ctx.PoolsByNode;
        if (known.Length <= node.Id)
        {
            known = new ServerPool?[Math.Max(node.Id + 1, ctx.Topology.Nodes.Length)];
            ctx.PoolsByNode = known;
        }

        var pool = known[node.Id];
        if (pool is null || pool.Node != node || pool.Retired)
        {
            pool = pools.GetPool(ctx.Session.Database, ctx.Session.DatabaseName, ctx.Session.User, node);
            known[node.Id] = pool;
        }

        var reserved = ctx.Reserved;
        if (node.Id < reserved.Length && reserved[node.Id] is { } kept)
        {
            // The session's own connection to this node (session pooling): still its, unless a reload or failover
            // retired the pool it came from, or it broke.
            reserved[node.Id] = null;
            if (kept.Pool == pool && !kept.Broken)
            {
                ctx.Server = kept;
                return ValueTask.CompletedTask;
            }

            kept.Pool.Close(kept);
        }

        var acquire = pool.AcquireAsync(ctx.Aborted);
        if (acquire.IsCompletedSuccessfully)
        {
            Attach(ctx, acquire.Result);
            return ValueTask.CompletedTask;
        }

        return AwaitAsync(acquire, ctx);

        [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
        static async ValueTask AwaitAsync(ValueTask<ServerConnection> acquire, QueryContext ctx) => Attach(ctx, await acquire.ConfigureAwait(false));
    }

    /// <summary>The server now serves a client: counted against its node until the pool takes it back (least_outstanding).</summary>
    private static void Attach(QueryContext ctx, ServerConnection server)
    {
        server.CountOutstanding();
        ctx.Server = server;
    }
}
