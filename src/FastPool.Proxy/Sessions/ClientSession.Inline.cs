using System.Buffers;
using System.IO.Pipelines;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// Session pooling's pumps, run on the transport's loop thread as the bytes arrive (<see cref="IInlineConsumer"/>):
/// a step that scans, sends all it scanned at once and needs nothing else is done there, and the pump's parked read
/// never wakes. Anything else (a socket that takes only part of the bytes, SUSPEND, the end of the session, a
/// protocol violation) is left half done in <see cref="_clientResume"/> or <see cref="_serverResume"/>, the parked
/// read completes, and the pump finishes that step the usual way before it reads again.
/// </summary>
internal sealed partial class ClientSession : IInlineConsumer, IHangupWatcher
{
    private ClientStep? _clientResume;
    private ServerStep? _serverResume;

    // The session itself consumes both directions, which it tells apart by the reader: one object fewer to load per
    // event than a consumer object per direction (in a profile, loading that object was a cache miss per event).
    private PipeReader? _inlineClientInput;
    private ServerConnection? _inlineServer;

    /// <summary>Both directions of a session are taken inline, when both sockets can send without waiting and no cache looks at them.</summary>
    private void StartInline(ServerConnection server)
    {
        if (_sessionCacheGate is not null || !_client.CanSendNow || !server.Connection.CanSendNow)
        {
            return;
        }

        _inlineClientInput = _client.Input;
        _inlineServer = server;
        if (_client.TrySetInlineConsumer(this) && !server.Connection.TrySetInlineConsumer(this))
        {
            _client.TrySetInlineConsumer(null);
        }
    }

    bool IInlineConsumer.TryConsume(PipeReader reader, in ReadOnlySequence<byte> buffer) =>
        _pooledInline ? TryConsumePooled(reader, buffer)
        : ReferenceEquals(reader, _inlineClientInput)
            ? TryConsumeFromClient(reader, buffer, _inlineServer!)
            : TryConsumeFromServer(reader, buffer, _inlineServer!);

    /// <summary>One pass of the client pump over what it read: what the scan found, and how far forwarding got.</summary>
    private struct ClientStep
    {
        public long Forward;
        public long Consumed;
        public int Queries;
        public PumpExit? Exit;

        /// <summary>Bytes of <see cref="Forward"/> already sent.</summary>
        public long Sent;

        /// <summary>The pump is marked as forwarding (the suspend gate was passed).</summary>
        public bool Marked;
    }

    /// <summary>One pass of the server pump over what it read.</summary>
    private struct ServerStep
    {
        public long Forward;
        public int Transactions;
        public bool Valid;
        public long Sent;
        public bool Marked;
    }

    private ClientStep ScanClient(in ReadOnlySequence<byte> buffer, ServerConnection server)
    {
        ClientStep step = default;
        step.Exit = _scanner.ScanFromClient(buffer, server.Protocol, out step.Forward, out step.Consumed, out step.Queries);
        NoteQueriesSent(step.Queries);
        return step;
    }

    private ServerStep ScanServer(in ReadOnlySequence<byte> buffer, ServerConnection server)
    {
        ServerStep step = default;
        step.Valid = _scanner.ScanFromServer(buffer, server.Protocol, out step.Forward, out step.Transactions);
        NoteServerBatch(server.Protocol, step.Transactions);
        SuspectIfEnding(server);
        return step;
    }

    /// <summary>Sends the scanned bytes now if the gate is open and the socket takes them all; false leaves the rest to the pump.</summary>
    private bool TryForwardNow(ref int busy, Connection to, in ReadOnlySequence<byte> buffer, long forward, ref bool marked, ref long sent)
    {
        if (!TryBeginForward(ref busy))
        {
            return false;
        }

        marked = true;
        bool all;
        int n;
        try
        {
            all = to.TrySendNow(buffer.FirstSpan[..(int)forward], out n);
        }
        catch (Exception)
        {
            // The read fails with this (EpollReader.ConsumeInline) and the pump ends: it must not stay marked, or
            // SUSPEND would wait for it forever.
            EndForward(ref busy);
            throw;
        }

        sent = n;
        if (!all)
        {
            return false;
        }

        EndForward(ref busy);
        return true;
    }

    private bool TryConsumeFromClient(PipeReader input, in ReadOnlySequence<byte> buffer, ServerConnection server)
    {
        if (!buffer.IsSingleSegment)
        {
            return false;
        }

        NoteActivity();
        var step = ScanClient(buffer, server);
        if (step.Forward > 0)
        {
            if (!TryForwardNow(ref _clientPumpSending, server.Connection, buffer, step.Forward, ref step.Marked, ref step.Sent))
            {
                _clientResume = step;
                return false;
            }

            _traffic.AddIn(step.Forward, step.Queries);
        }

        if (step.Exit.HasValue)
        {
            _clientResume = step;
            return false;
        }

        input.AdvanceTo(buffer.GetPosition(step.Consumed), buffer.End);
        return true;
    }

    private bool TryConsumeFromServer(PipeReader input, in ReadOnlySequence<byte> buffer, ServerConnection server)
    {
        if (!buffer.IsSingleSegment)
        {
            return false;
        }

        var step = ScanServer(buffer, server);
        if (step.Forward > 0)
        {
            if (!TryForwardNow(ref _serverPumpSending, _client, buffer, step.Forward, ref step.Marked, ref step.Sent))
            {
                _serverResume = step;
                return false;
            }

            _traffic.AddOut(step.Forward, step.Transactions);
        }

        NoteActivity();
        if (!step.Valid)
        {
            _serverResume = step;
            return false;
        }

        input.AdvanceTo(buffer.GetPosition(step.Forward), buffer.End);
        return true;
    }
}
