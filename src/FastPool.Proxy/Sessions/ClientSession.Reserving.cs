using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pipeline;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Topology;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// Load balancing in session pooling, as Pgpool-II does it: a client of a database entry with several nodes keeps a
/// server connection on the primary for its whole session (taken with its first message) and, from its first read
/// that may be balanced, one on the standby the load-balancing policy chose. Its transactions are routed exactly as
/// in transaction pooling (<see cref="ClientSession"/>'s routing rules), but a transaction's server goes back to the
/// client, not to the pool (<see cref="QueryContext.Reserved"/>), and every server is released, reset with
/// server_reset_query, when the client leaves.
/// <para>
/// Session state follows the client from one of its servers to the other as in transaction pooling: settings
/// (SET, RESET, startup parameters) are applied to a server before it runs the client's next transaction, so a SET
/// reaches both connections; protocol-level named statements are prepared on each server that executes them
/// (max_prepared_statements). State that cannot be carried over (LISTEN, SQL PREPARE, temporary tables, WITH HOLD
/// cursors, session advisory locks, SET ROLE / SESSION AUTHORIZATION) is only ever created on the primary, and pins
/// the session there for good, whatever the pin_* settings say: in session pooling the client owns its server.
/// </para>
/// </summary>
internal sealed partial class ClientSession
{
    private bool _reserving;
    private bool _walFetchWanted;
    private int _walFetchNode = -1;

    /// <summary>Whether the client's transactions are routed and take a server each (every mode but plain session pooling).</summary>
    private bool PerTransaction => _mode != PoolMode.Session || _reserving;

    /// <summary>Session pooling over several nodes with load_balance_mode on (at login; a reload does not switch a client).</summary>
    private void InitReserving(PoolMode mode)
    {
        _reserving = mode == PoolMode.Session && Topology.Nodes.Length > 1 && _runtime.Config.FastPool.Routing.LoadBalanceMode;
        if (_reserving)
        {
            _query.Reserved = new ServerConnection?[Topology.Nodes.Length];
        }
    }

    /// <summary>Under the swap lock: the client keeps <paramref name="server"/> for its next transaction on that node.</summary>
    private void Park(ServerConnection server)
    {
        var reserved = _query.Reserved;
        int id = server.Node.Id;
        if (id >= reserved.Length)
        {
            Array.Resize(ref reserved, id + 1);
            _query.Reserved = reserved;
        }

        if (reserved[id] is { } other && other != server)
        {
            // Cannot happen (a node's connection is taken out when it is attached); never leak one.
            other.Pool.Close(other);
        }

        reserved[id] = server;
    }

    /// <summary>The client left: each server it kept is reset and goes back to the pool (or is closed).</summary>
    private async Task ReleaseReservedAsync()
    {
        var reserved = _query.Reserved;
        for (int i = 0; i < reserved.Length; i++)
        {
            ServerConnection? server;
            lock (_swap!)
            {
                server = reserved[i];
                reserved[i] = null;
            }

            if (server is not null)
            {
                await ReleaseAsync(server).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// read_your_writes in session pooling, before a read: the primary connection the client keeps is asked for its
    /// WAL position after the client's last write (PostgreSQL docs 9.27.3), on the client's own time, as no other
    /// client shares that connection. Until it answers, the read goes to the primary.
    /// </summary>
    private async ValueTask FetchWalPositionOnReservedAsync()
    {
        _walFetchWanted = false;
        var reserved = _query.Reserved;
        int id = _walFetchNode;
        ServerConnection? server;
        lock (_swap!)
        {
            server = id >= 0 && id < reserved.Length ? reserved[id] : null;
        }

        if (server is null || server.Node.Role != NodeRole.Primary)
        {
            // The connection is gone (or its node no longer the primary): no standby is known to have the write.
            return;
        }

        try
        {
            using var cts = new CancellationTokenSource(s_resetTimeout);
            var row = await MessageIo.QueryFirstRowAsync(server, _walBuilder ??= new MessageBuilder(), WalPositionQuery, cts.Token).ConfigureAwait(false);
            _query.MinReplayLsn = NodeMonitor.CommitBound(row);
        }
        catch (Exception ex)
        {
            _query.MinReplayLsn = ulong.MaxValue;
            if (ex is not ServerException)
            {
                // Its state is unknown: the next transaction on the primary takes a fresh connection.
                server.Broken = true;
            }
        }
    }
}
