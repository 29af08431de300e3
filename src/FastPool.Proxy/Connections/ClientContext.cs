using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Sessions;
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
        ConnectedAt = runtime.Time.GetUtcNow();
    }

    public long Id { get; }

    /// <summary>The client's connection; replaced once, by a <see cref="TlsConnection"/>, when the client starts TLS.</summary>
    public Connection Connection { get; private set; }

    /// <summary>True once the client talks TLS (hostssl rules, cert authentication and client_tls_sslmode = require look at it).</summary>
    public bool IsTls => Connection is TlsConnection;

    /// <summary>
    /// The tls-server-end-point data of the certificate FastPool showed this TLS client; null in plaintext, or when
    /// the certificate allows no channel binding. When set, SCRAM-SHA-256-PLUS is offered.
    /// </summary>
    public byte[]? ChannelBinding { get; set; }

    /// <summary>Set when the client's certificate chains to client_tls_ca_file (certificate authentication needs it).</summary>
    public bool ClientCertificateTrusted { get; set; }

    /// <summary>Switches to the TLS connection that took over the socket of the current one (already detached).</summary>
    public void UpgradeConnection(TlsConnection connection) => Connection = connection;

    public ProxyRuntime Runtime { get; }

    public long StartedTicks { get; }

    /// <summary>Wall-clock connect time, for SHOW CLIENTS.</summary>
    public DateTimeOffset ConnectedAt { get; }

    /// <summary>The config snapshot this client logged in under.</summary>
    public ProxyConfig Config => Runtime.Config;

    public StartupPacket? Startup { get; set; }

    public string User { get; set; } = string.Empty;

    public string DatabaseName { get; set; } = string.Empty;

    public DatabaseConfig? Database { get; set; }

    /// <summary>True when the client asked for the admin console database (pgbouncer / fastpool).</summary>
    public bool IsConsole { get; set; }

    /// <summary>The pooled session once the client is logged in to a real database; null before and for the console.</summary>
    public ClientSession? Session { get; set; }

    /// <summary>Set once the client finished logging in (a session or the console runs).</summary>
    public bool LoggedIn { get; set; }

    /// <summary>Closes the client's socket from outside its own task (admin KILL, KILL_CLIENT).</summary>
    public void Kill(string reason)
    {
        KillReason = reason;
        Connection.Abort();
    }

    /// <summary>Why an admin command closed this client; wins over what the session saw (an aborted socket).</summary>
    public string? KillReason { get; private set; }

    /// <summary>Set by the stage that sends the closing reason, for the disconnection log line.</summary>
    public string CloseReason { get; set; } = "client close request";

    public MessageBuilder Builder { get; } = new();

    /// <summary>Counted in max_client_conn; the server gives the slot back when the connection ends.</summary>
    public bool HoldsClientSlot { get; set; }

    /// <summary>What a client still connected when a safe shutdown stops waiting is told, as PostgreSQL's own shutdown tells it.</summary>
    public const string ShutdownMessage = "terminating connection because FastPool is shutting down";

    /// <summary>
    /// A login step's wait was cancelled: by client_login_timeout (<paramref name="timeoutMessage"/>, 08P01) or by
    /// the end of a safe shutdown's wait for clients (57P01, which the client may retry elsewhere).
    /// </summary>
    public ValueTask SendLoginStoppedAsync(string timeoutMessage) =>
        Runtime.DrainOver.IsCancellationRequested
            ? SendErrorAsync(SqlState.AdminShutdown, ShutdownMessage)
            : SendErrorAsync(SqlState.ProtocolViolation, timeoutMessage);

    /// <summary>Sends a FATAL error (or another severity) to the client, ignoring a client that is already gone.</summary>
    public async ValueTask SendErrorAsync(string sqlState, string message, string severity = "FATAL", string? detail = null)
    {
        CloseReason = message;

        // Errors of logged-in clients count in their pool's errors by class (/metrics). Not before login: the
        // names are not checked yet, and counting them would let anyone add label values.
        if (LoggedIn && !IsConsole)
        {
            Runtime.Stats.For(DatabaseName, User).CountError(sqlState);
        }

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
