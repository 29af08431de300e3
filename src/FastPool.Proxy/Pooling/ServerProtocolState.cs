using System.Buffers;
using FastPool.Protocol;

namespace FastPool.Proxy.Pooling;

/// <summary>
/// What the forwarding scanners learn about a server connection's protocol state: outstanding responses,
/// transaction status, reported parameters. Kept apart from the socket so the scanners can be driven
/// (and benchmarked) without one.
/// </summary>
internal sealed class ServerProtocolState
{
    /// <summary>
    /// Queries, Syncs and FunctionCalls sent whose ReadyForQuery has not come back yet. Changed by both pumps of
    /// a session, hence Interlocked. Zero with no extended messages after the last Sync means the server is at
    /// a message boundary and can be reset and reused.
    /// </summary>
    public int PendingReadyForQuery;

    /// <summary>ErrorResponses seen from this server (only the server-to-client pump writes it).</summary>
    public int Errors;

    /// <summary>
    /// The server sent a FATAL (or PANIC) error: it ends this connection (PostgreSQL docs 55.2.9 "Termination", 55.8);
    /// only the server-to-client pump writes it.
    /// </summary>
    public bool EndingWithFatal;

    private Sessions.PreparedStatementCache? _prepared;

    /// <summary>
    /// An ErrorResponse came after the last ReadyForQuery. With extended-protocol messages unsynced, the server is then
    /// discarding everything up to the next Sync (PostgreSQL docs 55.2.3 "Extended Query"). Server pump only.
    /// </summary>
    public bool ErrorSinceReady;

    /// <summary>
    /// The server sent CopyInResponse (or CopyBothResponse) and waits for the client's CopyData, CopyDone or CopyFail
    /// (55.2.6 "COPY Operations"); cleared by CommandComplete, ErrorResponse or ReadyForQuery. Server pump only.
    /// </summary>
    public bool CopyIn;

    /// <summary>
    /// Whether the answers still owed (<see cref="PendingReadyForQuery"/>) wait on more from the client: the server
    /// is in COPY IN, or skipping to a Sync after an error. A client that broke the protocol sends neither.
    /// </summary>
    public bool WaitsOnClient => CopyIn || (ErrorSinceReady && UnsyncedExtended);

    /// <summary>Status byte of the last ReadyForQuery.</summary>
    public TransactionStatus TransactionStatus { get; set; } = TransactionStatus.Idle;

    /// <summary>Extended-protocol messages sent since the last Sync (their responses are not bounded by a ReadyForQuery yet).</summary>
    public bool UnsyncedExtended { get; set; }

    /// <summary>GUC_REPORT parameters as the server last reported them (55.2.7 "Asynchronous Operations").</summary>
    public Dictionary<string, string> Parameters { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Transaction pooling: the shared prepared statements this server holds (created on first use; session-mode
    /// servers never need one). It stays with the connection from client to client.
    /// </summary>
    public Sessions.PreparedStatementCache Prepared => _prepared ??= new();

    /// <summary>How many shared prepared statements this server holds, for SHOW SERVERS (read without creating the cache).</summary>
    public int PreparedCount => _prepared?.Count ?? 0;

    /// <summary>The server dropped its prepared statements (DISCARD ALL or DEALLOCATE ALL ran).</summary>
    public void ForgetPrepared()
    {
        _prepared?.Clear();
        PreparedUnknown = false;
    }

    /// <summary>
    /// A client's DISCARD ALL or DEALLOCATE ALL failed: which prepared statements the server holds is not known, so
    /// the connection must not be handed to another client unless a reset drops them all.
    /// </summary>
    public bool PreparedUnknown { get; set; }

    /// <summary>Bumped by every ParameterStatus, so what was derived from <see cref="Parameters"/> knows it is stale.</summary>
    public int ParametersVersion { get; private set; }

    public bool AtMessageBoundary => Volatile.Read(ref PendingReadyForQuery) == 0 && !UnsyncedExtended;

    public void RecordParameter(in ReadOnlySequence<byte> body)
    {
        if (BackendMessageReader.TryReadParameterStatus(body, out var name, out var value))
        {
            Parameters[name] = value;
            ParametersVersion++;
        }
    }
}
