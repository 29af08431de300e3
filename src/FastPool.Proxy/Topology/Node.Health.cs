namespace FastPool.Proxy.Topology;

public sealed partial class Node
{
    private volatile bool _suspected;

    /// <summary>
    /// A client just failed to reach the node and the confirming probe has not decided yet: reads go elsewhere
    /// meanwhile, without taking the node out before the health checker agrees.
    /// </summary>
    internal bool Suspected
    {
        get => _suspected;
        set => _suspected = value;
    }

    /// <summary>Counts role/status changes (under the topology's gate), so a check taken before one can be recognised.</summary>
    internal long StateEpoch { get; private set; }

    /// <summary>Changes role and status together and stamps the reason; true when anything changed.</summary>
    internal bool SetState(NodeRole role, NodeStatus status, string reason, DateTimeOffset now)
    {
        if (role == _role && status == _status)
        {
            return false;
        }

        _role = role;
        _status = status;
        StateEpoch++;
        LastStatusChange = now;
        LastChangeReason = reason;
        return true;
    }

    /// <summary>Updates only the reason shown for the node (e.g. why a reachable node stays detached).</summary>
    internal void SetReason(string reason, DateTimeOffset now)
    {
        if (reason != LastChangeReason)
        {
            LastChangeReason = reason;
            LastStatusChange = now;
        }
    }
}
