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
    Up,
    Down,
}

/// <summary>
/// Runtime state of one PostgreSQL server behind a database entry. The endpoint comes from the config
/// snapshot; role and status are runtime facts that the failover and routing stages update, never through
/// the config.
/// </summary>
public sealed class Node
{
    private volatile NodeRole _role;
    private volatile NodeStatus _status = NodeStatus.Up;
    private long _selectCount;
    private int _outstanding;

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

    /// <summary>Records a check; role and status follow it, and a change is stamped with its reason.</summary>
    public void Apply(NodeCheck check, DateTimeOffset now)
    {
        LastCheck = check;
        var role = check.Reachable ? (check.InRecovery ? NodeRole.Standby : NodeRole.Primary) : _role;
        var status = check.Reachable ? NodeStatus.Up : NodeStatus.Down;
        if (role != _role || status != _status)
        {
            LastStatusChange = now;
            LastChangeReason = check.Reachable ? $"check: {role.ToString().ToLowerInvariant()}" : $"check failed: {check.Error}";
        }

        _role = role;
        _status = status;
    }

    /// <summary>Reads the routing stage sent here (SHOW POOL_NODES select_cnt).</summary>
    public long SelectCount => Interlocked.Read(ref _selectCount);

    /// <summary>Server connections to this node in use by clients right now (least_outstanding).</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    public void CountSelect(int delta = 1) => Interlocked.Add(ref _selectCount, delta);

    public void AddOutstanding(int delta) => Interlocked.Add(ref _outstanding, delta);

    /// <summary>
    /// A client could not reach the node: it is marked down at once, so no other read is sent there before the next
    /// check, which brings it back up when it answers again.
    /// </summary>
    public void MarkUnreachable(string reason, DateTimeOffset now)
    {
        if (_status == NodeStatus.Down)
        {
            return;
        }

        LastStatusChange = now;
        LastChangeReason = "connect failed: " + reason;
        _status = NodeStatus.Down;
    }

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

    public static NodeCheck Failed(string error) => new(false, false, 0, null, error);
}

/// <summary>The nodes of one database entry, in the order the entry lists them.</summary>
public sealed class DatabaseTopology
{
    public DatabaseTopology(DatabaseConfig config)
    {
        Config = config;
        var nodes = new Node[config.Nodes.Count];
        for (int i = 0; i < nodes.Length; i++)
        {
            // Until role detection exists, node 0 is taken to be the primary, as PgBouncer takes its one host.
            nodes[i] = new Node(i, config.Nodes[i], i == 0 ? NodeRole.Primary : NodeRole.Unknown);
        }

        Nodes = nodes;
    }

    public DatabaseConfig Config { get; }

    public IReadOnlyList<Node> Nodes { get; }
}
