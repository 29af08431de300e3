using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Connections;

/// <summary>What the connection stages learn about one client before its session starts.</summary>
internal sealed class ClientContext
{
    private static long s_nextId;

    public ClientContext(Connection connection, ProxyRuntime runtime)
    {
        Connection = connection;
        Runtime = runtime;
        Id = Interlocked.Increment(ref s_nextId);
        StartedTicks = runtime.Time.GetTimestamp();
    }

    public long Id { get; }

    public Connection Connection { get; }

    public ProxyRuntime Runtime { get; }

    public long StartedTicks { get; }

    /// <summary>The config snapshot this client logged in under.</summary>
    public ProxyConfig Config => Runtime.Config;

    public StartupPacket? Startup { get; set; }

    public string User { get; set; } = string.Empty;

    public string DatabaseName { get; set; } = string.Empty;

    public DatabaseConfig? Database { get; set; }

    /// <summary>Set by the stage that sends the closing reason, for the disconnection log line.</summary>
    public string CloseReason { get; set; } = "client close request";

    public MessageBuilder Builder { get; } = new();

    /// <summary>Sends a FATAL error (or another severity) to the client, ignoring a client that is already gone.</summary>
    public async ValueTask SendErrorAsync(string sqlState, string message, string severity = "FATAL", string? detail = null)
    {
        CloseReason = message;
        Builder.Reset();
        Builder.ErrorResponse(severity, sqlState, message, detail);
        try
        {
            await Connection.SendAsync(Builder.Written).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The client left first; the error has nobody to go to.
        }
    }
}

internal delegate Task ClientDelegate(ClientContext context);

/// <summary>A connection-level stage: runs before the session (TLS, limits, startup, auth) and calls next to continue.</summary>
internal interface IConnectionStage
{
    Task InvokeAsync(ClientContext context, ClientDelegate next);
}
