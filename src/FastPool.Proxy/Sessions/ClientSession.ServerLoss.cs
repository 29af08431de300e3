using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// A server connection that ends under a client (its socket closes, or it sends a FATAL error, after which the
/// server closes it) makes the health checker probe the node at once, in every pool mode. The server pump
/// reports it the moment it sees it: waiting for the session to end would miss it whenever the client, told by
/// the forwarded error, closes its socket first, and the node would then wait for the next periodic check.
/// </summary>
internal sealed partial class ClientSession
{
    private ServerConnection? _suspectedServer;

    /// <summary>Asks for the confirming probe of the server's node, once per server connection.</summary>
    private void SuspectServer(ServerConnection server, string reason)
    {
        if (Interlocked.Exchange(ref _suspectedServer, server) != server)
        {
            _ = _runtime.Health.SuspectAsync(Topology, server.Node, reason);
        }
    }

    /// <summary>
    /// The server pump's read ended or failed. A connection FastPool closed itself (marked broken first: the client
    /// left mid-transaction, a timeout, a detached node) says nothing about the node.
    /// </summary>
    private void SuspectLostServer(ServerConnection server)
    {
        if (!server.Broken)
        {
            SuspectServer(server, "a client session lost its server connection");
        }
    }

    /// <summary>After a scan of what the server sent: a FATAL error means the connection is ending.</summary>
    private void SuspectIfEnding(ServerConnection server)
    {
        if (server.Protocol.EndingWithFatal)
        {
            SuspectServer(server, "the server ended a client's connection with a FATAL error");
        }
    }
}
