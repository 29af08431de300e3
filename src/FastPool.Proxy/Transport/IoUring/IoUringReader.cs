using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Tasks.Sources;
using static FastPool.Proxy.Transport.IoUring.IoUringNative;

namespace FastPool.Proxy.Transport.IoUring;

/// <summary>
/// The input side of an <see cref="IoUringConnection"/>: one contiguous buffer, as in the epoll transport
/// (rented from the array pool, grown only for a message that does not fit, returned while an idle client
/// waits), fed by IORING_OP_RECV requests that take a kernel-selected buffer from the loop's provided-buffer
/// ring (IOSQE_BUFFER_SELECT). A waiting connection therefore pins no memory of its own; when its receive
/// completes, the bytes are copied into the connection's buffer and the provided buffer goes back at once.
/// <para>
/// A read that finds nothing unexamined parks and queues one receive (directly on the loop thread, else
/// through <see cref="IoUringLoop.Post"/>); the completion fills the buffer and runs the reader's
/// continuation inline on the loop thread. Who may touch the buffer is decided by one state word:
/// the consumer while Idle, the loop (or a canceller) after winning Waiting → Busy. A receive that completes
/// when nobody waits (the read was cancelled, or the pooled server is idle) keeps its provided buffer as a
/// stash, taken by the next read.
/// </para>
/// </summary>
internal sealed class IoUringReader : ParkingReader
{

    private readonly IoUringConnection _connection;

    // Loop-thread state: the receive in flight and what a receive brought while nobody waited.
    private bool _recvArmed;
    private bool _lastFull;
    private int _stashId = -1;
    private int _stashLength;
    private bool _stashEof;
    private volatile bool _hasStash;

    public IoUringReader(IoUringConnection connection, bool releaseWhenIdle)
        : base(connection, releaseWhenIdle)
    {
        _connection = connection;
    }

    /// <summary>A receive completed while nobody was reading (bytes or the end of the stream).</summary>
    public bool HasStashedInput => _hasStash;

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (TryReadWithoutWaiting(cancellationToken, out var read))
        {
            return read;
        }

        ReleaseIdleBuffer();

        _core.Reset();
        Volatile.Write(ref _state, Waiting);
        if (cancellationToken.CanBeCanceled)
        {
            RegisterCancellation(cancellationToken);
        }

        // Abort or CancelPendingRead may have run just before the read was parked and found nothing to complete.
        if (_connection.IsClosed || Volatile.Read(ref _cancelRequested) != 0)
        {
            CompleteParked(null);
        }
        else if (_connection.Loop.IsLoopThread)
        {
            Arm();
        }
        else
        {
            _connection.Loop.Post(static s => ((IoUringReader)s!).Arm(), this);
        }

        return new ValueTask<ReadResult>(this, _core.Version);
    }

    /// <summary>Loop thread: serves a parked read from the stash, or queues its receive.</summary>
    private void Arm()
    {
        if (Volatile.Read(ref _state) != Waiting)
        {
            return;
        }

        if (_connection.Closing)
        {
            CompleteParked(null);
            return;
        }

        if (_hasStash)
        {
            if (Interlocked.CompareExchange(ref _state, Busy, Waiting) == Waiting)
            {
                TakeStash();
                Finish(new ReadResult(Buffered, false, _eof), inline: true);
            }

            return;
        }

        if (!_recvArmed)
        {
            SubmitRecv();
        }
    }

    private unsafe void SubmitRecv()
    {
        byte* sqe = _connection.Loop.Ring.NextSqe();
        sqe[0] = IORING_OP_RECV;
        sqe[1] = IOSQE_BUFFER_SELECT;

        // The reader parks only when it has taken everything, so the socket is most likely empty: arm the
        // poll at once rather than try a receive first, unless the last one filled its whole buffer.
        *(ushort*)(sqe + 2) = _lastFull ? (ushort)0 : IORING_RECVSEND_POLL_FIRST;
        *(int*)(sqe + 4) = _connection.Fd;
        *(ulong*)(sqe + 32) = _connection.UserData(IoUringOp.Recv);
        *(ushort*)(sqe + 40) = IoUringRing.BufferGroup;
        _recvArmed = true;
        _connection.Queued();
    }

    /// <summary>Loop thread: a receive completed (res bytes, 0 at end of stream, or -errno).</summary>
    internal void OnReceived(int result, uint flags)
    {
        _recvArmed = false;
        var ring = _connection.Loop.Ring;
        bool hasBuffer = (flags & IORING_CQE_F_BUFFER) != 0;
        ushort id = (ushort)(flags >> IORING_CQE_BUFFER_SHIFT);
        if (result is -ENOBUFS or -EINTR or -EAGAIN)
        {
            // No provided buffer was free (all taken by receives completed in this turn, now recycled):
            // receive again.
            if (Volatile.Read(ref _state) == Waiting && !_connection.Closing)
            {
                SubmitRecv();
            }

            return;
        }

        if (result > 0 && !hasBuffer)
        {
            result = -EINVAL;
        }

        if (Interlocked.CompareExchange(ref _state, Busy, Waiting) == Waiting)
        {
            if (result > 0)
            {
                Append(ring.Buffer(id, result));
                ring.RecycleBuffer(id);
                _lastFull = result == ring.BufferSize;
            }
            else
            {
                // End of stream, or an error (reset, cancel at close): both end the connection above.
                _eof = true;
            }

            Finish(new ReadResult(Buffered, false, _eof), inline: true);
            return;
        }

        if (result > 0)
        {
            _stashId = id;
            _stashLength = result;
            _hasStash = true;
        }
        else if (result != -ECANCELED)
        {
            _stashEof = true;
            _hasStash = true;
        }
    }

    private void TakeStash()
    {
        if (_stashId >= 0)
        {
            var ring = _connection.Loop.Ring;
            Append(ring.Buffer((ushort)_stashId, _stashLength));
            ring.RecycleBuffer((ushort)_stashId);
            _lastFull = _stashLength == ring.BufferSize;
            _stashId = -1;
        }

        if (_stashEof)
        {
            _eof = true;
        }

        _hasStash = false;
    }

    /// <summary>Loop thread, when the connection is finished: the stashed provided buffer goes back.</summary>
    internal void ReleaseStash()
    {
        if (_stashId >= 0)
        {
            _connection.Loop.Ring.RecycleBuffer((ushort)_stashId);
            _stashId = -1;
        }
    }

    private void Append(ReadOnlySpan<byte> data)
    {
        EnsureSpace(data.Length);
        data.CopyTo(_buffer.AsSpan(_end));
        _end += data.Length;
        _examinedAll = false;
    }

    /// <summary>Loop thread, when the connection starts closing.</summary>
    internal void OnClosing() => CompleteParked(null);
}
