using FastPool.Protocol;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Topology;

namespace FastPool.Proxy.Pipeline;

/// <summary>
/// Keeps clients that are between transactions, or waiting for a server, going through a failover: when the
/// chosen node cannot give a connection (refused, reset, detached while waiting), the node is probed at once,
/// and if it is really down the client waits (up to failover_wait_timeout) for the new primary and gets its
/// connection there, with no error. Nothing is replayed: this runs before any byte of the client's next
/// transaction reaches a server. A node that turns out to be alive gets the error passed through unchanged.
/// </summary>
internal sealed class FailoverStage(ProxyRuntime runtime) : IQueryStage
{
    public ValueTask InvokeAsync(QueryContext context, QueryDelegate next)
    {
        var topology = context.Topology;
        if (topology.Nodes.Length < 2 || context.TargetNode is { Role: NodeRole.Standby, Status: NodeStatus.Up })
        {
            // A read routed to a standby: if that standby fails, routing sends the read to another node (and
            // comes back through here when that node is the primary).
            return next(context);
        }

        var target = context.TargetNode ?? topology.Primary;
        if (target is { Status: NodeStatus.Up })
        {
            context.TargetNode = target;
            var acquired = next(context);
            return acquired.IsCompletedSuccessfully ? acquired : RetryAsync(context, next, acquired);
        }

        return RetryAsync(context, next, null);
    }

    private async ValueTask RetryAsync(QueryContext context, QueryDelegate next, ValueTask? first)
    {
        var topology = context.Topology;
        var wait = runtime.Config.FastPool.Failover.FailoverWaitTimeout;
        long start = runtime.Time.GetTimestamp();
        bool retriedLiveNode = false;
        while (true)
        {
            try
            {
                if (first is { } pending)
                {
                    first = null;
                    await pending.ConfigureAwait(false);
                    return;
                }

                var target = context.TargetNode;
                if (target is not { Status: NodeStatus.Up })
                {
                    // The routed node is gone (or none is known): writes and reads alike go to the primary.
                    if (topology.Primary is null)
                    {
                        runtime.Health.CheckNow(topology);
                    }

                    var remaining = wait - runtime.Time.GetElapsedTime(start);
                    target = await topology.WaitForPrimaryAsync(remaining, runtime.Time, context.Aborted).ConfigureAwait(false)
                        ?? throw new ServerException(SqlState.ConnectionFailure, $"no primary available for database \"{topology.Config.Name}\"")
                        {
                            Detail = $"no node became the primary within failover_wait_timeout ({wait.TotalSeconds:0.###} s)",
                        };
                    context.TargetNode = target;
                }

                await next(context).ConfigureAwait(false);
                return;
            }
            catch (ServerException ex) when (IsConnectionError(ex) && context.TargetNode is { } failed && runtime.Time.GetElapsedTime(start) < wait)
            {
                await runtime.Health.SuspectAsync(topology, failed, ex.Message).WaitAsync(context.Aborted).ConfigureAwait(false);
                if (failed.Status == NodeStatus.Up)
                {
                    // The node answers its health check: this was not a node failure. One more try, then the error.
                    if (retriedLiveNode)
                    {
                        throw;
                    }

                    retriedLiveNode = true;
                }
            }
        }
    }

    /// <summary>Errors that say the node could not be reached, as opposed to the server refusing this client.</summary>
    private static bool IsConnectionError(ServerException ex) =>
        ex.SqlState is SqlState.SqlClientUnableToEstablishConnection or SqlState.ConnectionFailure or SqlState.CannotConnectNow;
}
