using System.Buffers;
using FastPool.Protocol;
using FastPool.Proxy.Pipeline;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// A read on a standby that fails before any of its answer reached the client (the standby stopped, crashed or
/// was shut down: the connection ends, or the first message is a FATAL 57P01/57P02/57P03, PostgreSQL docs
/// Appendix A class 57) is sent again: the standby is marked down, the pipeline routes the read to another node,
/// and the bytes the client sent on this attachment are replayed there. A read has no effect to repeat, so the
/// client sees only the answer. The bytes are kept while nothing has come back (a copy into a buffer the session
/// reuses, bounded by <see cref="ReplayLimit"/>), and the answer is held until it is whole (up to the same bound), so
/// the client gets all of it or, from the retry, all of another node's.
/// </summary>
internal sealed partial class ClientSession
{
    private const int ReplayLimit = 64 * 1024;

    private volatile bool _replayable;
    private byte[] _replayBuffer = [];
    private int _replayLength;

    private enum StandbyAnswer : byte
    {
        /// <summary>Every ReadyForQuery the standby owes is in the buffer: forward it.</summary>
        Complete,

        /// <summary>More is to come: wait for it before forwarding anything.</summary>
        Incomplete,

        /// <summary>The standby failed before its answer was whole.</summary>
        Failed,

        /// <summary>Too much to hold: forward as it comes, no longer replayable.</summary>
        TooLarge,
    }

    /// <summary>A new read starts on the standby: nothing of its answer has reached the client yet.</summary>
    private void StartReplay()
    {
        _replayLength = 0;
        _replayable = true;
    }

    /// <summary>Under the swap lock, on the client pump: keeps forwarded bytes of a read; the previous length, or -1.</summary>
    private int KeepForReplay(in ReadOnlySequence<byte> forwarded)
    {
        if (!_replayable)
        {
            return -1;
        }

        int mark = _replayLength;
        if (mark + forwarded.Length > ReplayLimit)
        {
            _replayable = false;
            return -1;
        }

        int needed = mark + (int)forwarded.Length;
        if (_replayBuffer.Length < needed)
        {
            Array.Resize(ref _replayBuffer, Math.Max(needed, Math.Max(256, _replayBuffer.Length * 2)));
        }

        forwarded.CopyTo(_replayBuffer.AsSpan(mark));
        _replayLength = needed;
        return mark;
    }

    /// <summary>
    /// Looks over a standby's answer to a read without consuming it: whole (a ReadyForQuery for each Query and Sync
    /// outstanding), still coming, or cut off by a failure. A server going down says so with an ErrorResponse FATAL
    /// or, for an immediate shutdown (PostgreSQL 14 and later), a NoticeResponse WARNING with an operator-intervention
    /// code (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now), then closes the connection.
    /// </summary>
    private static StandbyAnswer CheckStandbyAnswer(in ReadOnlySequence<byte> buffer, bool completed, ServerProtocolState server, out string reason)
    {
        reason = "connection closed";
        int owed = Volatile.Read(ref server.PendingReadyForQuery);
        int ready = 0;
        var reader = new SequenceReader<byte>(buffer);
        while (MessageHeader.TryPeek(ref reader, out var header) && reader.Remaining >= header.TotalLength)
        {
            if (header.Length < 4)
            {
                // Not a message: the scanner reports it.
                return StandbyAnswer.Complete;
            }

            if (header.Code == (byte)BackendCode.ReadyForQuery)
            {
                ready++;
            }
            else if (header.Code is (byte)BackendCode.ErrorResponse or (byte)BackendCode.NoticeResponse)
            {
                var fields = BackendMessageReader.ReadErrorFields(reader.UnreadSequence.Slice(MessageHeader.Size, header.BodyLength));
                if (fields.Code.StartsWith("57P", StringComparison.Ordinal) && fields.Severity is "FATAL" or "PANIC" or "WARNING")
                {
                    reason = fields.Code + " " + fields.Message;
                    return StandbyAnswer.Failed;
                }
            }

            reader.Advance(header.TotalLength);
        }

        if (ready >= owed)
        {
            return StandbyAnswer.Complete;
        }

        if (completed)
        {
            // The connection ended before the answer was whole.
            return StandbyAnswer.Failed;
        }

        return buffer.Length >= ReplayLimit ? StandbyAnswer.TooLarge : StandbyAnswer.Incomplete;
    }

    /// <summary>On the server pump: gives the standby up and asks the client pump to send the read again.</summary>
    private PumpExit RetryRead(ServerConnection server, string reason)
    {
        var node = server.Node;
        SuspectServer(server, reason);
        Log.ReadRetried(_runtime.Logger, Topology.Config.Name, node.Id, node.Endpoint.Host, node.Endpoint.Port, reason);
        server.Broken = true;
        server.Connection.Abort();
        Volatile.Write(ref _serverFailure, (int)PumpExit.RetryRead);
        SignalHold();
        _client.Input.CancelPendingRead();
        return PumpExit.RetryRead;
    }

    /// <summary>
    /// The client pump could not send to the server of a read that may still be replayed: waits for the server pump
    /// to find out what happened. True: the read was sent again elsewhere; false: that failed too and the client was
    /// told; null: not a read to send again, the failure is handled as any other.
    /// </summary>
    private async ValueTask<bool?> SendFailedOnReadAsync(ServerConnection server, int replayMark)
    {
        if (replayMark < 0 || !_replayable)
        {
            return null;
        }

        // What failed to go out is still unconsumed in the client's input: it is not part of the replay.
        _replayLength = replayMark;
        server.Connection.Abort();
        await AwaitServerPumpAsync().ConfigureAwait(false);

        var stop = TakeStopReason();
        if (stop != PumpExit.RetryRead)
        {
            if (stop is { } other)
            {
                Volatile.Write(ref _serverFailure, (int)other);
            }

            return null;
        }

        return await RetryReadAsync().ConfigureAwait(false);
    }

    /// <summary>Waits for the server pump to end; its (pooled) result is taken once, here.</summary>
    private async ValueTask AwaitServerPumpAsync()
    {
        if (_serverPumpStarted)
        {
            _serverPumpStarted = false;
            await _serverPump.ConfigureAwait(false);
        }
    }

    /// <summary>On the client pump: closes the failed standby, takes a server for the read and replays it there.</summary>
    private async ValueTask<bool> RetryReadAsync()
    {
        ServerConnection? failed;
        lock (_swap!)
        {
            failed = _server;
            _server = null;
        }

        if (failed is not null)
        {
            failed.Pool.Close(failed);
        }

        await AwaitServerPumpAsync().ConfigureAwait(false);

        // Attaching resets the replay buffer, so the bytes are taken out first (a rare path: the copy may allocate).
        var replay = _replayBuffer.AsSpan(0, _replayLength).ToArray();
        if (!await AttachServerAsync(RouteIntent.Read).ConfigureAwait(false))
        {
            return false;
        }

        var server = _server!;
        bool ok;
        lock (_swap!)
        {
            // The replay starts where this attachment started, at a message boundary; scanning it again counts what
            // the new server owes, and leaves the scanner where the client's stream is.
            _scanner.ResetClientBoundary();
            var exit = _scanner.ScanFromClient(new ReadOnlySequence<byte>(replay), server.Protocol, out long forward, out _, out _);
            ok = exit is null && !_scanner.Held && forward == replay.Length;
            if (ok)
            {
                KeepForReplay(new ReadOnlySequence<byte>(replay));
            }
        }

        if (ok)
        {
            try
            {
                // As the scan rewrote it: a kept statement's Bind names it as this server knows it, after the Parse
                // that prepares it here (sent raw, the client's own name reached a server that never saw it).
                await SendToServerAsync(server.Connection, new ReadOnlySequence<byte>(replay), replay.Length).ConfigureAwait(false);
                return true;
            }
            catch (Exception)
            {
                // Reported below like any lost server.
            }
        }

        await _context.SendErrorAsync(SqlState.ConnectionFailure, "server conn crashed? (a read sent again failed too)", "FATAL",
            $"the connection to the server {server.Node.Endpoint.Host}:{server.Node.Endpoint.Port} was lost").ConfigureAwait(false);
        return false;
    }
}
