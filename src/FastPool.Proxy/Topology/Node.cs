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

    public override string ToString() => $"node {Id} ({Endpoint.Host}:{Endpoint.Port}, {Role}, {Status})";
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
