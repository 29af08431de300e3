using System.Buffers;
using FastPool.Protocol;
using FastPool.Proxy.Topology;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Pooling;

/// <summary>
/// One pooled connection to PostgreSQL: its socket, what the server reported at login and since
/// (ParameterStatus), its cancel key, and the bookkeeping the pool needs to decide whether it can be reused.
/// </summary>
internal sealed class ServerConnection
{
    private static long s_nextId;

    public ServerConnection(Connection connection, Node node, ServerPool pool, long generation, long createdTicks)
    {
        Connection = connection;
        Node = node;
        Pool = pool;
        Generation = generation;
        CreatedTicks = createdTicks;
        LastUsedTicks = createdTicks;
        Id = Interlocked.Increment(ref s_nextId);
    }

    public long Id { get; }

    public Connection Connection { get; }

    public Node Node { get; }

    public ServerPool Pool { get; }

    public long Generation { get; }

    public long CreatedTicks { get; }

    /// <summary>When the connection was last released to the pool (TimeProvider timestamp).</summary>
    public long LastUsedTicks { get; set; }

    /// <summary>How the connection is protected and how it logged in, for the log line: "TLSv13/TLS_AES_256_GCM_SHA384, SCRAM-SHA-256-PLUS".</summary>
    public string Security { get; set; } = "no TLS";

    // Cancel requests being forwarded to this connection (the low bits), and whether the pool was asked to take it
    // back meanwhile (the sign bit): see BeginCancel.
    private const int ReleaseDeferred = int.MinValue;
    private int _cancels;

    /// <summary>
    /// A client's CancelRequest is about to be forwarded to this connection. Until <see cref="EndCancel"/>, the
    /// connection does not go back to the pool: the cancel, which PostgreSQL delivers as a signal some time after it
    /// got the request, could otherwise stop the query of the next client to take it (55.2.8 "Canceling Requests in
    /// Progress"; PgBouncer holds a server being canceled back the same way).
    /// </summary>
    public void BeginCancel() => Interlocked.Increment(ref _cancels);

    /// <summary>The cancel was delivered (or given up on). True: the pool's hand-back was deferred; the caller releases it now.</summary>
    public bool EndCancel() =>
        Interlocked.Decrement(ref _cancels) == ReleaseDeferred
        && Interlocked.CompareExchange(ref _cancels, 0, ReleaseDeferred) == ReleaseDeferred;

    /// <summary>Whether no cancel is being forwarded; otherwise the release is left to the last <see cref="EndCancel"/>.</summary>
    internal bool TryDeferRelease()
    {
        while (true)
        {
            // Read with a full fence: the session's "no longer mine" store comes before this read (BeginCancel's caller
            // checks the other way round).
            int state = Interlocked.CompareExchange(ref _cancels, 0, 0);
            if ((state & ~ReleaseDeferred) == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _cancels, state | ReleaseDeferred, state) == state)
            {
                return true;
            }
        }
    }

    public int BackendProcessId { get; set; }

    public byte[] BackendSecretKey { get; set; } = [];

    /// <summary>Protocol state tracked by the forwarding scanners.</summary>
    public ServerProtocolState Protocol { get; } = new();

    /// <summary>GUC_REPORT parameters as the server last reported them.</summary>
    public Dictionary<string, string> Parameters => Protocol.Parameters;

    public TransactionStatus TransactionStatus
    {
        get => Protocol.TransactionStatus;
        set => Protocol.TransactionStatus = value;
    }

    /// <summary>
    /// Transaction pooling: settings that are not reported by ParameterStatus and differ from this server's login
    /// values, as the statement that set them (<see cref="Sessions.ClientSession.UnknownSetting"/> when a client
    /// changed one in a way FastPool could not follow). Empty after DISCARD ALL.
    /// </summary>
    public Dictionary<string, string> AppliedSettings { get; } = new(StringComparer.Ordinal);

    private string? _stateKey;
    private int _stateKeyParametersVersion;

    /// <summary>Call after any change to <see cref="AppliedSettings"/>: the cached <see cref="StateKey"/> no longer holds.</summary>
    public void AppliedSettingsChanged() => _stateKey = null;

    /// <summary>
    /// <see cref="Parameters"/> and <see cref="AppliedSettings"/> in one comparable string
    /// (<see cref="Sessions.SessionStateKey"/>), rebuilt only after either changed: a client whose own key is equal
    /// needs no settings applied and learns nothing from this server's parameters.
    /// </summary>
    public string StateKey()
    {
        int version = Protocol.ParametersVersion;
        if (_stateKey is null || _stateKeyParametersVersion != version)
        {
            _stateKey = Sessions.SessionStateKey.Build(Parameters, AppliedSettings);
            _stateKeyParametersVersion = version;
        }

        return _stateKey;
    }

    /// <summary>Set when the connection must not go back to the pool (I/O error, protocol state unknown).</summary>
    public bool Broken { get; set; }

    private int _outstanding;

    /// <summary>Counts the connection against its node while a client uses it (load_balance_policy = least_outstanding).</summary>
    public void CountOutstanding()
    {
        if (Interlocked.Exchange(ref _outstanding, 1) == 0)
        {
            Node.AddOutstanding(1);
        }
    }

    /// <summary>The pool took the connection back (released or closed); counted once however it got there.</summary>
    public void UncountOutstanding()
    {
        if (Interlocked.Exchange(ref _outstanding, 0) == 1)
        {
            Node.AddOutstanding(-1);
        }
    }

    public bool IsClean => !Broken && Protocol.AtMessageBoundary && !Protocol.PreparedUnknown && !Connection.IsClosed;

    public void RecordParameter(in ReadOnlySequence<byte> body) => Protocol.RecordParameter(body);

    /// <summary>
    /// Says goodbye and closes: Terminate lets the backend exit cleanly instead of logging an unexpected EOF. A
    /// socket that is already gone only leaves the closing to do.
    /// </summary>
    public async ValueTask TerminateAndCloseAsync()
    {
        try
        {
            if (!Connection.IsClosed)
            {
                await Connection.SendAsync(Messages.Terminate, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // Nothing to say goodbye to.
        }

        await Connection.DisposeAsync().ConfigureAwait(false);
    }

    public override string ToString() => $"S-{Id} {Node.Endpoint.Host}:{Node.Endpoint.Port} pid={BackendProcessId}";
}
