using System.Buffers;
using System.IO.Pipelines;
using FastPool.Protocol;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// Transaction pooling's middle of a transaction, run on the transport's loop thread (<see cref="IInlineConsumer"/>),
/// as session pooling does it (ClientSession.Inline.cs). While a client holds a server and the bytes need nothing
/// but forwarding, a step is scanned and sent where it arrives and neither pump wakes: pgbench's tpcb transaction
/// is seven round trips on one server, and each cost two pump resumptions. Where a step needs more (taking or handing
/// back a server, which is always a pump's, a rewrite for prepared statements, a socket that takes only part, an
/// error, SUSPEND) it is left half done in <see cref="_pooledClientResume"/> or <see cref="_pooledServerResume"/>,
/// the parked read completes, and the pump finishes it. Anything routing or the cache look at goes to the pumps
/// untouched: those steps are declined before the scan, except a balanced read's answer that arrived whole.
/// </summary>
internal sealed partial class ClientSession
{
    private PooledClientStep? _pooledClientResume;
    private PooledServerStep? _pooledServerResume;

    /// <summary>Pooled sessions forward inline: set once both directions may (ClientSession.Pooling.cs).</summary>
    private bool _pooledInline;

    /// <summary>A client step begun on the loop thread: scanned against <see cref="Server"/>, maybe partly sent.</summary>
    private struct PooledClientStep
    {
        public ServerConnection Server;
        public PumpExit? Exit;
        public long Forward;
        public long Consumed;
        public int Queries;
        public long Sent;
        public bool Marked;
    }

    /// <summary>A server step begun on the loop thread.</summary>
    private struct PooledServerStep
    {
        public long Forward;
        public int Transactions;
        public bool Valid;
        public ServerStop Stop;
        public long Sent;
        public bool Marked;
    }

    /// <summary>The client side inline, for the whole session, when the transport and the settings allow it.</summary>
    private void StartPooledInline()
    {
        if (_runtime.Cache is not null || !_client.CanSendNow)
        {
            return;
        }

        _inlineClientInput = _client.Input;
        _pooledInline = _client.TrySetInlineConsumer(this);
    }

    /// <summary>A server was attached: its replies are taken inline too.</summary>
    private void AttachInline(ServerConnection server)
    {
        if (_pooledInline && server.Connection.CanSendNow)
        {
            server.Connection.TrySetInlineConsumer(this);
        }
    }

    /// <summary>Before a server leaves the session: nothing it receives may reach this session's consumer any more.</summary>
    private static void DetachInline(ServerConnection server) => server.Connection.TrySetInlineConsumer(null);

    /// <summary>
    /// <see cref="TryForwardNow"/>, except that a failed send is left to the pump, which sends again and handles the
    /// failure its own way (a read that can go elsewhere, the right error for the client).
    /// </summary>
    private bool TrySendInline(ref int busy, Transport.Connection to, in ReadOnlySequence<byte> buffer, long forward, ref bool marked, ref long sent)
    {
        try
        {
            return TryForwardNow(ref busy, to, buffer, forward, ref marked, ref sent);
        }
        catch (Exception)
        {
            // TryForwardNow ended the forward mark; nothing counts as sent.
            marked = false;
            sent = 0;
            return false;
        }
    }

    private bool TryConsumePooled(PipeReader reader, in ReadOnlySequence<byte> buffer) =>
        ReferenceEquals(reader, _inlineClientInput)
            ? TryConsumePooledFromClient(reader, buffer)
            : TryConsumePooledFromServer(reader, buffer);

    /// <summary>Routing's reads (replayable, split) and their holds are the pumps' alone.</summary>
    private bool RoutingLooks => _split || _attachedForRead || _replayable;

    private bool TryConsumePooledFromClient(PipeReader input, in ReadOnlySequence<byte> buffer)
    {
        if (!buffer.IsSingleSegment || _server is null)
        {
            // A new transaction: taking a server is the pump's.
            return false;
        }

        PooledClientStep step = default;
        lock (_swap!)
        {
            var server = _server;
            if (server is null || RoutingLooks)
            {
                return false;
            }

            step.Server = server;
            step.Exit = _scanner.ScanFromClient(buffer, server.Protocol, out step.Forward, out step.Consumed, out step.Queries);
            if (step.Forward > 0)
            {
                _idleNotDetached = false;
                _sentSinceAttach = true;
            }
        }

        NoteActivity();
        NoteQueriesSent(step.Queries);
        if (step.Forward > 0)
        {
            if (_scanner.Held || (_prepared is not null && !_prepared.ToServer.IsEmpty)
                || !TrySendInline(ref _clientPumpSending, step.Server.Connection, buffer, step.Forward, ref step.Marked, ref step.Sent))
            {
                _pooledClientResume = step;
                return false;
            }

            _traffic.AddIn(step.Forward, step.Queries);
            step.Sent = step.Forward;
        }

        if (step.Exit.HasValue)
        {
            _pooledClientResume = step;
            return false;
        }

        input.AdvanceTo(buffer.GetPosition(step.Consumed), buffer.End);
        return true;
    }

    private bool TryConsumePooledFromServer(PipeReader input, in ReadOnlySequence<byte> buffer)
    {
        var server = _server;
        if (!buffer.IsSingleSegment || server is null || !ReferenceEquals(server.Connection.Input, input)
            || _split || _capture is { Active: true })
        {
            return false;
        }

        if (_replayable)
        {
            // A balanced read's answer is held until it is whole (ClientSession.Retry.cs); one that arrived whole is
            // forwarded here like any other. Still coming, cut off or too large: the pump's.
            if (CheckStandbyAnswer(buffer, completed: false, server.Protocol, out _) != StandbyAnswer.Complete)
            {
                return false;
            }

            _replayable = false;
        }

        PooledServerStep step = default;
        step.Valid = ScanFromServer(buffer, server.Protocol, out step.Forward, out step.Transactions, out step.Stop);
        NoteServerBatch(server.Protocol, step.Transactions);
        SuspectIfEnding(server);
        if (step.Forward > 0)
        {
            if ((_prepared is not null && !_prepared.ToClient.IsEmpty)
                || !TrySendInline(ref _serverPumpSending, _client, buffer, step.Forward, ref step.Marked, ref step.Sent))
            {
                _pooledServerResume = step;
                return false;
            }

            _traffic.AddOut(step.Forward, step.Transactions);
            step.Sent = step.Forward;
        }

        NoteActivity();
        if (!step.Valid || step.Stop != ServerStop.None)
        {
            // The end of a transaction (hand back the server, or refuse a block in statement mode), or a bad message.
            _pooledServerResume = step;
            return false;
        }

        input.AdvanceTo(buffer.GetPosition(step.Forward), buffer.End);
        return true;
    }
}
