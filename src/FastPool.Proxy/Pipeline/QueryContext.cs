using FastPool.Proxy.Pooling;
using FastPool.Proxy.Sessions;
using FastPool.Proxy.Topology;

namespace FastPool.Proxy.Pipeline;

/// <summary>
/// What the query stages see and decide on when a client needs a server connection: in session mode once at
/// login, in the transaction-pooling modes at the start of each transaction. Reused per session, so the
/// pipeline allocates nothing per call.
/// </summary>
internal sealed class QueryContext
{
    public QueryContext(ClientSession session)
    {
        Session = session;
    }

    public ClientSession Session { get; }

    public DatabaseTopology Topology => Session.Topology;

    /// <summary>The node a routing stage chose; the terminal stage acquires a connection to it.</summary>
    public Node? TargetNode { get; set; }

    /// <summary>The server connection the pipeline produced.</summary>
    public ServerConnection? Server { get; set; }

    public CancellationToken Aborted { get; set; }

    /// <summary>What the session's next transaction needs, from its first statement (set before each pipeline run).</summary>
    public RouteIntent Intent { get; set; }

    /// <summary>
    /// read_your_writes: the primary's WAL position after this client's last committed write; a standby serves the
    /// client's reads only once it has replayed this far. 0 while the client has written nothing.
    /// </summary>
    public ulong MinReplayLsn { get; set; }

    /// <summary>The standby this client's reads go to while it stays eligible (per-client balancing).</summary>
    public Node? SessionStandby { get; set; }

    /// <summary>The redirect preference that applies to this client, resolved once per routing settings snapshot.</summary>
    public Configuration.RedirectPreference? Preference { get; set; }

    /// <summary>The settings <see cref="Preference"/> was resolved against.</summary>
    public Configuration.RoutingSettings? PreferenceFor { get; set; }

    /// <summary>Scratch for the routing stage's candidate list, sized to the topology; reused so a pick allocates nothing.</summary>
    public Node[] Candidates { get; set; } = [];

    /// <summary>
    /// The pool each node's last acquisition used, by node id (kept across <see cref="Reset"/>; the terminal stage
    /// checks it still applies). One per node, as routing moves a client between the primary and standbys.
    /// </summary>
    public ServerPool?[] PoolsByNode { get; set; } = [];

    /// <summary>
    /// Session pooling over several nodes: the server connections the client keeps between its transactions, by node
    /// id (null where it has none). The terminal stage takes the one for the routed node instead of asking the pool.
    /// Empty for every other client.
    /// </summary>
    public ServerConnection?[] Reserved { get; set; } = [];

    /// <summary>Whether the client keeps any server connection between transactions (session pooling over several nodes).</summary>
    public bool HoldsReserved
    {
        get
        {
            foreach (var server in Reserved)
            {
                if (server is not null)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>
    /// The result-cache key of the request the client is about to send (its first <see cref="CacheKeyLength"/> bytes;
    /// 0: the request is not a cache candidate). Set by the session before the pipeline runs.
    /// </summary>
    public byte[] CacheKey { get; set; } = [];

    public int CacheKeyLength { get; set; }

    /// <summary>The cache's answer to the request: the whole response, ReadyForQuery included; no server was taken.</summary>
    public byte[]? CachedResponse { get; set; }

    /// <summary>The cache had no answer: the response may be captured, as of this invalidation sequence number.</summary>
    public long? CaptureFrom { get; set; }

    public void Reset()
    {
        TargetNode = null;
        Server = null;
        CachedResponse = null;
        CaptureFrom = null;
    }
}

/// <summary>Where a transaction may run, as far as the session could tell from its first statement.</summary>
internal enum RouteIntent : byte
{
    /// <summary>A write, an explicit read-write transaction, anything not understood: the primary.</summary>
    Primary,

    /// <summary>Reads only: a standby the load-balancing policy picks, or the primary when none may serve it.</summary>
    Read,
}

internal delegate ValueTask QueryDelegate(QueryContext context);

/// <summary>One query stage: a small class that decides something and calls the next stage (STYLE.md, YARP-like).</summary>
internal interface IQueryStage
{
    ValueTask InvokeAsync(QueryContext context, QueryDelegate next);
}
