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

    public override string ToString() => $"S-{Id} {Node.Endpoint.Host}:{Node.Endpoint.Port} pid={BackendProcessId}";
}
