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

    public int BackendProcessId { get; set; }

    public byte[] BackendSecretKey { get; set; } = [];

    /// <summary>GUC_REPORT parameters as the server last reported them (55.2.7 "Asynchronous Operations").</summary>
    public Dictionary<string, string> Parameters { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Status byte of the last ReadyForQuery.</summary>
    public TransactionStatus TransactionStatus { get; set; } = TransactionStatus.Idle;

    /// <summary>
    /// Queries, Syncs and FunctionCalls sent whose ReadyForQuery has not come back yet. Changed by both pumps of
    /// a session, hence Interlocked. Zero with no extended messages after the last Sync means the server is at
    /// a message boundary and can be reset and reused.
    /// </summary>
    public int PendingReadyForQuery;

    /// <summary>Extended-protocol messages sent since the last Sync (their responses are not bounded by a ReadyForQuery yet).</summary>
    public bool UnsyncedExtended { get; set; }

    /// <summary>Set when the connection must not go back to the pool (I/O error, protocol state unknown).</summary>
    public bool Broken { get; set; }

    public bool IsClean => !Broken && Volatile.Read(ref PendingReadyForQuery) == 0 && !UnsyncedExtended && !Connection.IsClosed;

    public void RecordParameter(in ReadOnlySequence<byte> body)
    {
        if (BackendMessageReader.TryReadParameterStatus(body, out var name, out var value))
        {
            Parameters[name] = value;
        }
    }

    public override string ToString() => $"S-{Id} {Node.Endpoint.Host}:{Node.Endpoint.Port} pid={BackendProcessId}";
}
