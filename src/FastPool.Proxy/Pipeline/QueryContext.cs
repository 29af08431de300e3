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

    /// <summary>The pool the last acquisition used (kept across <see cref="Reset"/>; the terminal stage checks it still applies).</summary>
    public ServerPool? LastPool { get; set; }

    public void Reset()
    {
        TargetNode = null;
        Server = null;
    }
}

internal delegate ValueTask QueryDelegate(QueryContext context);

/// <summary>One query stage: a small class that decides something and calls the next stage (STYLE.md, YARP-like).</summary>
internal interface IQueryStage
{
    ValueTask InvokeAsync(QueryContext context, QueryDelegate next);
}
