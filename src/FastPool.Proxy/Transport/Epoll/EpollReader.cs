using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Tasks.Sources;

namespace FastPool.Proxy.Transport.Epoll;

/// <summary>
/// The input side of an <see cref="EpollConnection"/>: one contiguous buffer (rented from the array pool,
/// grown only for a message that does not fit, returned while an idle client waits so that idle
/// connections pin no memory) and a read that receives only when there is something to receive.
/// <para>
/// A read first serves what is buffered and not yet examined. Otherwise it calls recv(2) only when the
/// last receive filled its space or an EPOLLIN edge arrived since; else it parks, and the loop thread does
/// the receive when the edge comes and runs the reader's continuation in place. The handshake between
/// the reader and the loop is one state word changed by compare-and-swap: Idle, Waiting (a parked read), Busy
/// (someone is completing the parked read), Completed; plus a sticky edge flag that the loop sets when an
/// EPOLLIN edge finds no read parked, before it looks at the state once more, and the reader clears right before
/// it receives. An edge that finds the read not parked (running, or being completed by a cancel on another thread)
/// is therefore never lost: the reader sees the flag before it parks, or after, and then takes the park back.
/// </para>
/// </summary>
internal sealed unsafe class EpollReader : ParkingReader
{
    private const int MinimumReadSize = 4 * 1024;

    private readonly EpollConnection _connection;
    private bool _mayHaveMore = true;
    private volatile bool _peerClosed;
    private int _edge;

    private IInlineConsumer? _inline;
    private IHangupWatcher? _hangupWatcher;

    public EpollReader(EpollConnection connection, bool releaseWhenIdle)
        : base(connection, releaseWhenIdle)
    {
        _connection = connection;
    }

    /// <summary>Takes what arrives while a read is parked, on the loop thread (<see cref="IInlineConsumer"/>); null: the read completes.</summary>
    internal IInlineConsumer? InlineConsumer
    {
        set => Volatile.Write(ref _inline, value);
    }

    /// <summary>Tells <paramref name="watcher"/> of the peer's hang-up: from the loop's next hang-up event, or now if one came already.</summary>
    internal void WatchHangup(IHangupWatcher watcher)
    {
        Volatile.Write(ref _hangupWatcher, watcher);
        if ((_peerClosed || _connection.IsClosed) && Interlocked.Exchange(ref _hangupWatcher, null) is { } now)
        {
            now.OnHangup();
        }
    }

    internal void StopWatchingHangup() => Volatile.Write(ref _hangupWatcher, null);

    /// <summary>
    /// Whether something arrived that no read took, known without a syscall: the loop records every EPOLLIN edge
    /// and hang-up even when no read is parked. Null when only the socket can tell (the last receive filled its
    /// space, so more may be waiting with no new edge).
    /// </summary>
    internal bool? UnreadInput =>
        _peerClosed || Volatile.Read(ref _edge) != 0 || (_buffer is not null && _start < _end) ? true
        : _mayHaveMore ? null
        : false;

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (TryReadWithoutWaiting(cancellationToken, out var read))
        {
            return read;
        }

        while (true)
        {
            if (_mayHaveMore || _peerClosed || Volatile.Read(ref _edge) != 0)
            {
                // Clear the edge first: one that arrives during the receive is then kept for the next round.
                Interlocked.Exchange(ref _edge, 0);
                if (Receive())
                {
                    return new ValueTask<ReadResult>(new ReadResult(Buffered, false, _eof));
                }
            }

            ReleaseIdleBuffer();

            _core.Reset();
            if (Interlocked.CompareExchange(ref _state, Waiting, Idle) != Idle)
            {
                throw new InvalidOperationException("Reading is not allowed after the reader was completed.");
            }

            if (cancellationToken.CanBeCanceled)
            {
                RegisterCancellation(cancellationToken);
            }

            // Abort or CancelPendingRead may have run just before the read was parked and found nothing to complete.
            if (_connection.IsClosed || Volatile.Read(ref _cancelRequested) != 0)
            {
                CompleteParked(null);
                return new ValueTask<ReadResult>(this, _core.Version);
            }

            // An edge that came after the receive above but before the read was parked found nobody waiting:
            // take the park back and receive, unless the loop already took it (then it completes the read).
            if (Volatile.Read(ref _edge) != 0 && Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
            {
                _waitCancel.Dispose();
                _waitCancel = default;
                continue;
            }

            return new ValueTask<ReadResult>(this, _core.Version);
        }
    }

    /// <summary>One recv(2) into the free space; true when it produced data or the end of the stream.</summary>
    private bool Receive()
    {
        EnsureSpace(MinimumReadSize);
        int space = _buffer!.Length - _end;
        nint n;
        int errno;
        fixed (byte* p = &_buffer[_end])
        {
            n = _connection.Receive(p, space, out errno);
        }

        if (n > 0)
        {
            _end += (int)n;
            _mayHaveMore = n == space;
            _examinedAll = false;
            return true;
        }

        _mayHaveMore = false;
        if (n < 0 && errno == EpollNative.EAGAIN)
        {
            return false;
        }

        // End of stream, or an error (reset, ...): both end the connection for the session above.
        _eof = true;
        return true;
    }

    /// <summary>
    /// The read is Busy (the loop holds it) and has new bytes: the consumer takes them, and what else the socket
    /// holds, and the read is parked again. False: the read is to complete (the consumer declined or left its step
    /// to the pump, the stream ended, or a cancel came).
    /// </summary>
    private bool ConsumeInline(IInlineConsumer consumer)
    {
        while (true)
        {
            bool taken;
            try
            {
                taken = Volatile.Read(ref _cancelRequested) == 0 && consumer.TryConsume(this, Buffered);
            }
            catch (Exception ex)
            {
                // A bug in the consumer: the parked read fails with it, so the pump ends its session the usual way
                // (the loop logs it); left Busy, the read could never be woken again, not even by Abort.
                Volatile.Write(ref _state, Idle);
                _core.RunContinuationsAsynchronously = true;
                _core.SetException(ex);
                throw;
            }

            if (!taken)
            {
                return false;
            }

            // A receive that filled the space may have left more in the socket, and a hang-up's end of stream is
            // still to be read: no new edge will say so for either.
            if (!(_mayHaveMore || _peerClosed) || !Receive())
            {
                break;
            }

            if (_eof)
            {
                return false;
            }
        }

        ReleaseIdleBuffer();

        // Parked again, unless a cancel or close came meanwhile and found the read busy: then it completes now.
        int state = Interlocked.CompareExchange(ref _state, Waiting, Busy);
        if (state == Busy && (_connection.IsClosed || Volatile.Read(ref _cancelRequested) != 0))
        {
            CompleteParked(null);
        }
        else if (state == Completed)
        {
            // Complete() came while the loop held the read and left the parked read to it: it ends, as Complete ends
            // a parked read.
            _core.RunContinuationsAsynchronously = true;
            _core.SetResult(new ReadResult(ReadOnlySequence<byte>.Empty, false, true));
        }

        return true;
    }

    /// <summary>The loop saw an EPOLLIN (or hang-up) edge; runs on the loop thread.</summary>
    /// <param name="hangup">The peer shut its side (EPOLLRDHUP/EPOLLHUP/EPOLLERR). Sticky: the end of the stream
    /// stays readable after a short receive took the last bytes, and no further edge will announce it.</param>
    internal void OnReadable(bool hangup)
    {
        if (hangup)
        {
            _peerClosed = true;
            if (Volatile.Read(ref _hangupWatcher) is not null && Interlocked.Exchange(ref _hangupWatcher, null) is { } watcher)
            {
                watcher.OnHangup();
            }
        }

        // Usually a read is parked, and taking it is all there is to do. Only when none is parked does the edge need
        // recording, flag first and then one more look at the state: a read parked in between checked the flag before
        // it was set (and is taken here), one parked after sees the flag and takes its park back to receive.
        if (Interlocked.CompareExchange(ref _state, Busy, Waiting) != Waiting)
        {
            Interlocked.Exchange(ref _edge, 1);
            if (Interlocked.CompareExchange(ref _state, Busy, Waiting) != Waiting)
            {
                return;
            }
        }

        // Only this thread sets the flag, so a plain write clears it; the receive below covers the edge it recorded.
        if (Volatile.Read(ref _edge) != 0)
        {
            Volatile.Write(ref _edge, 0);
        }

        if (Receive())
        {
            if (!_eof && Volatile.Read(ref _inline) is { } consumer && ConsumeInline(consumer))
            {
                return;
            }

            Finish(new ReadResult(Buffered, false, _eof), inline: true);
        }
        else if (Interlocked.CompareExchange(ref _state, Waiting, Busy) == Busy
                 && (_connection.IsClosed || Volatile.Read(ref _cancelRequested) != 0))
        {
            // The edge was stale (the reader had already taken those bytes): parked again, unless a cancel or
            // close came meanwhile and found the read busy.
            CompleteParked(null);
        }
    }
}
