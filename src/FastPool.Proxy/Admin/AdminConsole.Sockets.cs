using FastPool.Proxy.Connections;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Admin;

/// <summary>
/// SHOW SOCKETS and SHOW ACTIVE_SOCKETS: every client (logging in too) and server connection, with SHOW
/// CLIENTS' columns and then the low-level ones. PgBouncer's buffer columns describe its own I/O buffers; of
/// those, pkt_remain means the same here (bytes of the message being forwarded that have not arrived yet), and
/// FastPool adds what the kernel holds for the socket, which is where a stuck connection's bytes wait.
/// </summary>
internal sealed partial class AdminConsole
{
    private static Column[] SocketColumns() =>
    [
        .. ConnectionColumns(),
        new("pkt_remain", ColumnType.Int4),
        new("recv_queue", ColumnType.Int4), new("send_queue", ColumnType.Int4),
    ];

    /// <summary>PgBouncer's states: cl_active, cl_waiting, cl_login, sv_active, sv_idle, sv_used. ACTIVE_SOCKETS keeps the sockets with bytes under way.</summary>
    private void ShowSockets(bool activeOnly)
    {
        long now = _runtime.Time.GetTimestamp();
        _result.Describe(SocketColumns());
        var clients = _runtime.Clients.Values.OrderBy(c => c.Id).ToList();
        foreach (var client in clients.Where(c => c.LoggedIn))
        {
            var session = client.Session;
            SocketRow(client.Connection, activeOnly, session?.ClientPacketRemaining ?? 0, () => ClientRow(client, "cl_" + ClientState(client), now));
        }

        foreach (var (server, state, client) in Servers())
        {
            long remaining = client?.Session?.CurrentServer == server ? client.Session.ServerPacketRemaining : 0;
            SocketRow(server.Connection, activeOnly, remaining, () => ServerRow(server, "sv_" + state, client, now));
        }

        // Last, as PgBouncer lists them: clients still in their startup or authentication exchange.
        foreach (var client in clients.Where(c => !c.LoggedIn))
        {
            SocketRow(client.Connection, activeOnly, 0, () => ClientRow(client, "cl_login", now));
        }

        _result.Complete("SHOW");
    }

    private void SocketRow(Connection connection, bool activeOnly, long packetRemaining, Action row)
    {
        var (received, unsent) = SocketQueues.Read(connection.Socket);
        if (activeOnly && packetRemaining == 0 && received == 0 && unsent == 0)
        {
            return;
        }

        row();
        _result.Add(packetRemaining).Add(received).Add(unsent);
    }
}
