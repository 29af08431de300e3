using FastPool.Protocol;

namespace FastPool.Proxy.Connections;

/// <summary>max_client_conn: clients over the limit get 53300 after their startup packet, as PostgreSQL answers max_connections.</summary>
internal sealed class ConnectionLimitStage : IConnectionStage
{
    public async Task InvokeAsync(ClientContext context, ClientDelegate next)
    {
        var stats = context.Runtime.Stats;
        int count = stats.ClientOpened();
        try
        {
            int limit = context.Config.MaxClientConn;
            if (limit > 0 && count > limit)
            {
                await context.SendErrorAsync(SqlState.TooManyConnections, "no more connections allowed (max_client_conn)").ConfigureAwait(false);
                return;
            }

            await next(context).ConfigureAwait(false);
        }
        finally
        {
            stats.ClientClosed();
        }
    }
}
