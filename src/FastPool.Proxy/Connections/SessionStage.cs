using FastPool.Proxy.Sessions;

namespace FastPool.Proxy.Connections;

/// <summary>The last connection stage: the client is logged in, its session runs until it ends.</summary>
internal static class SessionStage
{
    public static Task RunAsync(ClientContext context)
    {
        var startup = context.Startup!;
        context.LoggedIn = true;
        if (context.Config.LogConnections)
        {
            Log.ClientLogin(context.Runtime.Logger, context.Id, context.DatabaseName, context.User, context.Connection.RemoteEndPoint, startup.GetParameter("application_name") ?? string.Empty);
        }

        return new ClientSession(context).RunAsync();
    }
}
