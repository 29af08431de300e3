using FastPool.Proxy.Admin;

namespace FastPool.Proxy.Connections;

/// <summary>
/// The order of the connection stages, fixed in one place (Kestrel's ConnectionBuilder idea):
/// startup (SSL/GSS refusal, cancel, version) -> max_client_conn -> authentication -> admin console or
/// DISABLE check -> session.
/// TLS will slot in before startup's second read when it lands.
/// </summary>
internal static class ConnectionPipeline
{
    public static ClientDelegate Build()
    {
        IConnectionStage[] stages = [new StartupStage(), new ConnectionLimitStage(), new AuthStage(), new AdminStage()];
        ClientDelegate next = SessionStage.RunAsync;
        for (int i = stages.Length - 1; i >= 0; i--)
        {
            var stage = stages[i];
            var inner = next;
            next = ctx => stage.InvokeAsync(ctx, inner);
        }

        return next;
    }
}
