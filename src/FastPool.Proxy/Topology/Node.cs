using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Topology;

public enum NodeRole
{
    /// <summary>Not yet detected; treated as the primary while it is the first node.</summary>
    Unknown,
    Primary,
    Standby,
}

public enum NodeStatus
{
    /// <summary>Attached: clients may be sent to it.</summary>
    Up,

    /// <summary>Health checks declared it unreachable; detached until it is back (and, for a former primary, rebuilt).</summary>
    Down,

    /// <summary>Detached by DETACH NODE; only ATTACH NODE brings it back.</summary>
    Detached,

    /// <summary>Fenced: it claims to be a primary while another node is the primary; it must be rebuilt (RECOVER NODE).</summary>
    NeedsRecovery,
}

/// <summary>
/// Runtime state of one PostgreSQL server behind a database entry. The endpoint comes from the config
/// snapshot; role and status are runtime facts that the failover and routing stages update, never through
/// the config.
/// </summary>
public sealed partial class Node
{
    private volatile NodeRole _role;
    private volatile NodeStatus _status = NodeStatus.Up;
    // Added to on every balanced read, from every loop thread: striped, and away from the role and status fields
    // that every routing decision reads (one line for both made each add evict the other core's copy of them).
    private const int SelectCounter = 0;
    private const int OutstandingCounter = 1;
    private readonly Metrics.StripedCounters _counters = new(2);

    public Node(int id, NodeEndpoint endpoint, NodeRole initialRole)
    {
        Id = id;
        Endpoint = endpoint;
        _role = initialRole;
    }

    public int Id { get; }

    public NodeEndpoint Endpoint { get; }

    public NodeRole Role
    {
        get => _role;
        set => _role = value;
    }

    public NodeStatus Status
    {
        get => _status;
        set => _status = value;
    }

    /// <summary>What the last role/replication check found (null until the first check ran).</summary>
    public NodeCheck? LastCheck { get; private set; }

    /// <summary>When the role or status last changed, and why.</summary>
    public DateTimeOffset LastStatusChange { get; private set; } = DateTimeOffset.UtcNow;

    public string LastChangeReason { get; private set; } = "configured";

    /// <summary>Records a check without changing role or status: only the failover coordinator decides those.</summary>
    public void Record(NodeCheck check) => LastCheck = check;

    /// <summary>Reads the routing stage sent here (SHOW POOL_NODES select_cnt).</summary>
    public long SelectCount => _counters.Read(SelectCounter);

    /// <summary>Server connections to this node in use by clients right now (least_outstanding).</summary>
    public int Outstanding => (int)_counters.Read(OutstandingCounter);

    public void CountSelect(int delta = 1) => _counters.Add(SelectCounter, delta);

    public void AddOutstanding(int delta) => _counters.Add(OutstandingCounter, delta);

    public override string ToString() => $"node {Id} ({Endpoint.Host}:{Endpoint.Port}, {Role}, {Status})";
}

/// <summary>
/// One role and replication check of a node (PostgreSQL docs 9.27.4 "Recovery Control Functions"): whether
/// it is in recovery, its WAL position (replayed on a standby, written on a primary), and the seconds since
/// the last replayed transaction. <see cref="DelayBytes"/> is filled in against the primary's position.
/// </summary>
public sealed record NodeCheck(bool Reachable, bool InRecovery, ulong WalLsn, double? ReplayDelaySeconds, string? Error)
{
    public long? DelayBytes { get; init; }

    /// <summary>On a standby: the WAL it has received (flushed) from its upstream, which a promotion replays; 0 if none.</summary>
    public ulong ReceivedLsn { get; init; }

    /// <summary>On a standby: the server its WAL receiver is streaming from ("host:port"), null when it is not streaming.</summary>
    public string? StreamingFrom { get; init; }

    /// <summary>On a primary: the timeline it writes on; a promotion starts a new, higher one. 0 when unknown.</summary>
    public uint Timeline { get; init; }

    public static NodeCheck Failed(string error) => new(false, false, 0, null, error);
}

/// <summary>The nodes of one database entry, in the order the entry lists them.</summary>
public sealed partial class DatabaseTopology
{
    public DatabaseTopology(DatabaseConfig config)
    {
        Config = config;
        var nodes = new Node[config.Nodes.Count];
        for (int i = 0; i < nodes.Length; i++)
        {
            // A single node is the primary, as PgBouncer takes its one host, and is never checked. With several,
            // roles are unknown until a check sees them.
            nodes[i] = new Node(i, config.Nodes[i], nodes.Length == 1 ? NodeRole.Primary : NodeRole.Unknown);
        }

        Nodes = nodes;
        // With several nodes, no node takes writes before a check has seen it out of recovery: after a failover
        // and a restart the node listed first may be an old primary that must not be written to.
        _primary = nodes.Length == 1 ? nodes[0] : null;
    }

    public DatabaseConfig Config { get; }

    /// <remarks>An array, not a read-only list: routing walks it for every read, and a list's Count and indexer are interface calls.</remarks>
    public Node[] Nodes { get; }
}
