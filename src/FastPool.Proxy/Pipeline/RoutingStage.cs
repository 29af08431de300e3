using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Topology;
using FastPool.Routing.Balancing;

namespace FastPool.Proxy.Pipeline;

/// <summary>
/// Replication-aware routing: a transaction that only reads goes to a standby the load-balancing policy picks
/// among those that may serve it; everything else goes to the node that is primary now (by detected role, not
/// by its place in the entry). A standby may serve a read when it is up, has a positive backend_weight, lags
/// the primary by no more than delay_threshold / delay_threshold_by_time, and (read_your_writes) has replayed
/// the client's last committed write. When none may, the read goes to the primary, never to an error; a standby
/// that cannot be connected to is marked down and the read goes to the primary instead.
/// </summary>
internal sealed class RoutingStage : IQueryStage
{
    private readonly ProxyRuntime _runtime;
    private readonly ILoadBalancePolicy[] _policies;
    private readonly Random _random;

    public RoutingStage(ProxyRuntime runtime, Random? random = null)
    {
        _runtime = runtime;
        _random = random ?? Random.Shared;

        // One instance of each policy for the proxy's lifetime: round_robin's turn and weighted_random's generator
        // are shared by all sessions, and a reload that changes load_balance_policy needs nothing rebuilt.
        _policies = new ILoadBalancePolicy[3];
        foreach (var kind in Enum.GetValues<LoadBalancePolicyKind>())
        {
            _policies[(int)kind] = LoadBalancePolicies.Create(kind, random);
        }
    }

    public ValueTask InvokeAsync(QueryContext context, QueryDelegate next)
    {
        if (context.TargetNode is not null)
        {
            return next(context);
        }

        var nodes = context.Topology.Nodes;
        if (nodes.Length == 1)
        {
            context.TargetNode = nodes[0];
            return next(context);
        }

        var routing = _runtime.Config.FastPool.Routing;

        // The primary the health checks confirmed; null while a failover has none yet, and the failover stage
        // then waits for the new one (a node that only claims the role may be a fenced old primary).
        var primary = context.Topology.Primary;
        Node? standby = null;
        if (context.Intent == RouteIntent.Read && routing.LoadBalanceMode)
        {
            standby = PreferenceOf(context, routing) is { } preference
                ? PickPreferred(context, routing, nodes, preference)
                : PickStandby(context, routing, nodes);
        }

        var target = standby ?? primary;
        context.TargetNode = target;
        if (context.Intent == RouteIntent.Read)
        {
            // Counted where the read is sent; a standby that turns out unreachable does not count it (below).
            target?.CountSelect();
        }

        if (standby is null)
        {
            return next(context);
        }

        var acquired = next(context);
        return acquired.IsCompletedSuccessfully ? acquired : FallBackOnFailureAsync(acquired, context, next, standby);
    }

    private Node? PickStandby(QueryContext context, RoutingSettings routing, Node[] nodes)
    {
        // Per-client balancing keeps the standby chosen first while it stays eligible, as Pgpool-II keeps one
        // load-balance node per session; statement_level_load_balance picks again for every transaction.
        if (!routing.StatementLevelLoadBalance && context.SessionStandby is { } sticky && Holds(nodes, sticky) && MayServe(sticky, routing, context.MinReplayLsn))
        {
            return sticky;
        }

        if (context.Candidates.Length < nodes.Length)
        {
            context.Candidates = new Node[nodes.Length];
        }

        var candidates = context.Candidates;
        int count = 0;
        for (int i = 0; i < nodes.Length; i++)
        {
            if (MayServe(nodes[i], routing, context.MinReplayLsn))
            {
                candidates[count++] = nodes[i];
            }
        }

        if (count == 0)
        {
            return null;
        }

        Span<double> weights = stackalloc double[count];
        Span<int> outstanding = stackalloc int[count];
        for (int i = 0; i < count; i++)
        {
            weights[i] = routing.WeightOf(candidates[i].Id);
            outstanding[i] = candidates[i].Outstanding;
        }

        int pick = _policies[(int)routing.Policy].Pick(weights, outstanding);
        var chosen = pick < 0 ? null : candidates[pick];
        candidates.AsSpan(0, count).Clear();
        context.SessionStandby = chosen;
        return chosen;
    }

    // By reference: Contains would compare with the default comparer on every read.
    private static bool Holds(Node[] nodes, Node node) => Array.IndexOf<object>(nodes, node) >= 0;

    /// <summary>app_name_redirect_preference_list first, then database_redirect_preference_list (Pgpool-II's order).</summary>
    private static RedirectPreference? PreferenceOf(QueryContext context, RoutingSettings routing)
    {
        if (routing.AppNameRedirects.Count == 0 && routing.DatabaseRedirects.Count == 0)
        {
            return null;
        }

        if (!ReferenceEquals(context.PreferenceFor, routing))
        {
            context.Preference = RedirectPreference.Find(routing.AppNameRedirects, context.Session.ApplicationName)
                ?? RedirectPreference.Find(routing.DatabaseRedirects, context.Session.DatabaseName);
            context.PreferenceFor = routing;
        }

        return context.Preference;
    }

    /// <summary>
    /// A redirect preference: with its ratio, the read goes to the named target (a node that may not serve it now
    /// falls back to ordinary balancing); otherwise, and for <c>primary</c>, to the primary (null).
    /// </summary>
    private Node? PickPreferred(QueryContext context, RoutingSettings routing, Node[] nodes, RedirectPreference preference)
    {
        if (preference.Target == RedirectTarget.Primary || (preference.Ratio < 1 && NextDouble() >= preference.Ratio))
        {
            return null;
        }

        if (preference.Target == RedirectTarget.Node && preference.NodeId < nodes.Length)
        {
            var node = nodes[preference.NodeId];
            if (node.Role == NodeRole.Primary && node.Status == NodeStatus.Up)
            {
                return null;
            }

            if (MayServe(node, routing, context.MinReplayLsn))
            {
                return node;
            }
        }

        return PickStandby(context, routing, nodes);
    }

    private double NextDouble()
    {
        if (ReferenceEquals(_random, Random.Shared))
        {
            return _random.NextDouble();
        }

        lock (_random)
        {
            return _random.NextDouble();
        }
    }

    /// <summary>Whether <paramref name="node"/> is a standby that may serve a read needing WAL up to <paramref name="minLsn"/>.</summary>
    internal static bool MayServe(Node node, RoutingSettings routing, ulong minLsn)
    {
        if (node.Role != NodeRole.Standby || node.Status != NodeStatus.Up || node.Suspected || routing.WeightOf(node.Id) <= 0 || node.LastCheck is not { } check)
        {
            return false;
        }

        if (routing.DelayThresholdBytes > 0 && (check.DelayBytes is not { } bytes || bytes > routing.DelayThresholdBytes))
        {
            return false;
        }

        // The seconds since the last replayed transaction grow on an idle primary too, so they count as lag only
        // while the standby is also behind in bytes.
        if (routing.DelayThresholdByTime > TimeSpan.Zero
            && (check.DelayBytes is not { } behind || (behind > 0 && check.ReplayDelaySeconds is { } seconds && seconds * 1000 > routing.DelayThresholdByTime.TotalMilliseconds)))
        {
            return false;
        }

        return minLsn == 0 || check.WalLsn >= minLsn;
    }

    /// <summary>
    /// A standby that cannot be connected to is marked down and the read is routed again: to another standby that
    /// may serve it, else to the primary. The client sees no error from a standby it never asked for by name.
    /// </summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FallBackOnFailureAsync(ValueTask acquired, QueryContext context, QueryDelegate next, Node standby)
    {
        var nodes = context.Topology.Nodes;
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await acquired.ConfigureAwait(false);
                return;
            }
            catch (ServerException ex) when (IsUnreachable(ex) && !context.Aborted.IsCancellationRequested && attempt < nodes.Length)
            {
                // The health checker confirms (a refused connection within milliseconds) and takes the node out;
                // this read does not wait for that and is not sent to the same standby again.
                _ = _runtime.Health.SuspectAsync(context.Topology, standby, ex.Message);
                standby.CountSelect(-1);
                context.SessionStandby = null;
                context.Server = null;
                var routing = _runtime.Config.FastPool.Routing;
                var other = PickStandby(context, routing, nodes);
                if (other == standby)
                {
                    other = null;
                }

                var target = other ?? context.Topology.Primary;
                Log.ReadNodeUnreachable(_runtime.Logger, context.Topology.Config.Name, standby.Id, standby.Endpoint.Host, standby.Endpoint.Port, target?.Id ?? -1, ex.Message);
                context.TargetNode = target;
                target?.CountSelect();
                if (other is null)
                {
                    // The primary's own failures are the client's to see.
                    await next(context).ConfigureAwait(false);
                    return;
                }

                standby = other;
                acquired = next(context);
            }
        }
    }

    /// <summary>Connection exceptions (class 08) and a server shutting down or starting up (57P01..57P03).</summary>
    private static bool IsUnreachable(ServerException ex) =>
        ex.SqlState.StartsWith("08", StringComparison.Ordinal) || ex.SqlState.StartsWith("57P", StringComparison.Ordinal);
}
