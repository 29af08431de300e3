using FastPool.Protocol;

namespace FastPool.Proxy.Connections;

/// <summary>max_client_conn: clients over the limit get 53300 after their startup packet, as PostgreSQL answers max_connections.</summary>
internal sealed class ConnectionLimitStage : IConnectionStage
{
    /// <remarks>
    /// The slot is given back by <see cref="ProxyServer"/> when the connection ends (<see cref="ClientContext.HoldsClientSlot"/>),
    /// not in a finally here: this stage then keeps no frame alive for the length of the session.
    /// </remarks>
    public Task InvokeAsync(ClientContext context, ClientDelegate next)
    {
        int count = context.Runtime.Stats.ClientOpened();
        context.HoldsClientSlot = true;
        int limit = context.Config.MaxClientConn;
        if (limit > 0 && count > limit && !ForConsole(context))
        {
            return context.SendErrorAsync(SqlState.TooManyConnections, "no more connections allowed (max_client_conn)").AsTask();
        }

        return next(context);
    }

    /// <summary>
    /// The admin console is let in over the limit, as PgBouncer does: a pooler saturated with clients is exactly when
    /// an operator needs SHOW CLIENTS. Its login still decides who may use it.
    /// </summary>
    private static bool ForConsole(ClientContext context) =>
        context.Startup is { } startup
        && Admin.AdminConsole.IsConsoleDatabase(startup.GetParameter("database") is { Length: > 0 } db ? db : startup.GetParameter("user") ?? string.Empty);
}
