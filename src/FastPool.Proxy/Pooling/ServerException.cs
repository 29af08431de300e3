using FastPool.Protocol;

namespace FastPool.Proxy.Pooling;

/// <summary>
/// A failure to get or use a server connection, carrying the PostgreSQL error the client should see.
/// Thrown off the hot path only (connect, login, pool waits).
/// </summary>
internal sealed class ServerException : Exception
{
    public ServerException(string sqlState, string message, string severity = "FATAL", Exception? inner = null)
        : base(message, inner)
    {
        SqlState = sqlState;
        Severity = severity;
    }

    public string SqlState { get; }

    public string Severity { get; }

    /// <summary>An error the server itself sent (login refused, SET failed), passed through with its own fields.</summary>
    public static ServerException FromServer(ErrorFields fields) =>
        new(fields.Code, fields.Message, fields.Severity ?? "FATAL") { Detail = fields.Detail };

    public string? Detail { get; init; }
}
