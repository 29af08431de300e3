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
/// reuses, bounded by <see cref="ReplayLimit"/>); the first byte forwarded to the client ends that.
/// </summary>
internal sealed partial class ClientSession
{
    private const int ReplayLimit = 64 * 1024;

    private volatile bool _replayable;
    private byte[] _replayBuffer = [];
    private int _replayLength;

    private enum StandbyFailure : byte
    {
        None,
        NeedMore,
        Failed,
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

    /// <summary>Whether what the standby sent first says it failed (or it closed) before answering.</summary>
    private static StandbyFailure CheckStandbyFailure(in ReadOnlySequence<byte> buffer, bool completed, out string reason)
    {
        reason = "connection closed";
        if (completed)
        {
            // The connection ended before a ReadyForQuery reached the client: whatever came is incomplete.
            return StandbyFailure.Failed;
        }

        // A server going down says so first: an ErrorResponse FATAL, or (immediate shutdown, PostgreSQL 14 and later)
        // a NoticeResponse WARNING, with an operator-intervention code (57P01 admin shutdown, 57P02 crash shutdown,
        // 57P03 cannot connect now), then closes the connection.
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryPeek(out byte code) || code is not ((byte)BackendCode.ErrorResponse or (byte)BackendCode.NoticeResponse))
        {
            return StandbyFailure.None;
        }

        if (!MessageHeader.TryPeek(ref reader, out var header) || reader.Remaining < header.TotalLength)
        {
            return StandbyFailure.NeedMore;
        }

        var fields = BackendMessageReader.ReadErrorFields(buffer.Slice(MessageHeader.Size, header.BodyLength));
        if (fields.Code.StartsWith("57P", StringComparison.Ordinal) && fields.Severity is "FATAL" or "PANIC" or "WARNING")
        {
            reason = fields.Code + " " + fields.Message;
            return StandbyFailure.Failed;
        }

        return StandbyFailure.None;
    }

    /// <summary>On the server pump: gives the standby up and asks the client pump to send the read again.</summary>
    private PumpExit RetryRead(ServerConnection server, string reason)
    {
        var node = server.Node;
        node.MarkUnreachable(reason, _runtime.Time.GetUtcNow());
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
        if (_serverPump is { } pump)
        {
            await pump.ConfigureAwait(false);
        }

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

        if (_serverPump is { } pump)
        {
            await pump.ConfigureAwait(false);
        }

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
                await server.Connection.SendAsync(replay).ConfigureAwait(false);
                return true;
            }
            catch (Exception)
            {
                // Reported below like any lost server.
            }
        }

        await _context.SendErrorAsync(SqlState.ConnectionFailure, "server conn crashed?", "FATAL",
            $"the connection to the server {server.Node.Endpoint.Host}:{server.Node.Endpoint.Port} was lost").ConfigureAwait(false);
        return false;
    }
}
