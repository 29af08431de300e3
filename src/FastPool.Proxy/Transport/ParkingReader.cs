using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Tasks.Sources;

namespace FastPool.Proxy.Transport;

/// <summary>
/// What the epoll and io_uring readers share: one contiguous buffer (from the array pool) and a read that
/// parks until its transport's loop completes it. The handshake is one state word changed by compare-and-swap
/// (Idle, Waiting: a parked read, Busy: someone is completing it, Completed); a cancel, a close or the
/// cancellation token completes a parked read here, and the loop completes it with data through
/// <see cref="Finish"/>. The subclasses decide when to receive and how.
/// </summary>
internal abstract class ParkingReader : PipeReader, IValueTaskSource<ReadResult>
{
    // 16 KiB: a pgbench result fits at once, a big DataRow stream takes few receives.
    protected const int SegmentSize = 16 * 1024;

    protected const int Idle = 0;
    protected const int Waiting = 2;
    protected const int Busy = 3;
    protected const int Completed = 4;

#pragma warning disable SA1401, CA1051 // The subclasses' receive paths work on these directly: they are the hot path.
    protected byte[]? _buffer;
    protected int _start;
    protected int _end;
    protected bool _examinedAll;
    protected bool _eof;
    protected int _state;
    protected int _cancelRequested;
    protected ManualResetValueTaskSourceCore<ReadResult> _core;
    protected CancellationTokenRegistration _waitCancel;
#pragma warning restore SA1401, CA1051

    private readonly Connection _owner;
    private readonly bool _releaseWhenIdle;

    /// <param name="owner">The connection whose closing ends the stream.</param>
    /// <param name="releaseWhenIdle">Give the buffer back whenever a read parks with nothing buffered (clients:
    /// idle connections then pin no memory); otherwise only a buffer grown past the usual size goes back.</param>
    protected ParkingReader(Connection owner, bool releaseWhenIdle)
    {
        _owner = owner;
        _releaseWhenIdle = releaseWhenIdle;
    }

    // A client's read gives its buffer back each time it parks with nothing buffered, and takes one again when the
    // next request comes, once per transaction: the loop thread keeps one spare segment for that, cheaper than a
    // round trip through the shared pool.
    [ThreadStatic]
    private static byte[]? t_spare;

    private static byte[] RentSegment(int needed)
    {
        var spare = t_spare;
        if (spare is not null && needed <= SegmentSize)
        {
            t_spare = null;
            return spare;
        }

        return ArrayPool<byte>.Shared.Rent(Math.Max(SegmentSize, needed));
    }

    protected ReadOnlySequence<byte> Buffered => _buffer is null ? ReadOnlySequence<byte>.Empty : new(_buffer, _start, _end - _start);

    /// <summary>
    /// Room for at least <paramref name="needed"/> more bytes: a fresh 16 KiB buffer, or the live bytes moved to
    /// the front, or (a message bigger than the buffer, which the consumer needs whole) a buffer twice the size.
    /// </summary>
    protected void EnsureSpace(int needed)
    {
        if (_buffer is null)
        {
            _buffer = RentSegment(needed);
            _start = _end = 0;
            return;
        }

        if (_start == _end)
        {
            _start = _end = 0;
        }

        if (_buffer.Length - _end >= needed)
        {
            return;
        }

        int live = _end - _start;
        if (_start > 0 && _buffer.Length - live >= needed)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, live);
        }
        else
        {
            // A message bigger than the buffer (the consumer needs all of it): grow.
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, live + needed));
            Buffer.BlockCopy(_buffer, _start, bigger, 0, live);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        _start = 0;
        _end = live;
    }

    /// <summary>
    /// The start of every read, the same for each transport: what is buffered and not yet examined, a pending
    /// cancel or the end of the stream is answered at once (true); false means the read has to wait for input.
    /// </summary>
    protected bool TryReadWithoutWaiting(CancellationToken cancellationToken, out ValueTask<ReadResult> read)
    {
        if (Volatile.Read(ref _state) == Completed)
        {
            throw new InvalidOperationException("Reading is not allowed after the reader was completed.");
        }

        if (TryRead(out var ready))
        {
            read = new ValueTask<ReadResult>(ready);
            return true;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            read = ValueTask.FromCanceled<ReadResult>(cancellationToken);
            return true;
        }

        read = default;
        return false;
    }

    public override bool TryRead(out ReadResult result)
    {
        // Read before exchanging: a cancel is rare, and an interlocked operation on every read is not free.
        if (Volatile.Read(ref _cancelRequested) != 0 && Interlocked.Exchange(ref _cancelRequested, 0) != 0)
        {
            result = new ReadResult(Buffered, isCanceled: true, isCompleted: false);
            return true;
        }

        if ((_end > _start && !_examinedAll) || _eof || _owner.IsClosed)
        {
            _eof |= _owner.IsClosed;
            result = new ReadResult(Buffered, false, _eof);
            return true;
        }

        result = default;
        return false;
    }

    /// <summary>Before a read parks with nothing buffered: the buffer goes back when idle reads should pin no memory, or when it grew.</summary>
    protected void ReleaseIdleBuffer()
    {
        if (_buffer is not null && _start == _end && (_releaseWhenIdle || _buffer.Length > SegmentSize))
        {
            ReturnBuffer();
        }
    }

    protected void ReturnBuffer()
    {
        if (_buffer!.Length == SegmentSize && t_spare is null)
        {
            t_spare = _buffer;
        }
        else
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = null;
        _start = _end = 0;
    }

    /// <summary>Completes a parked read with a cancel, the end of the stream (closed), or an error.</summary>
    protected void CompleteParked(Exception? error, bool inline = false)
    {
        if (Interlocked.CompareExchange(ref _state, Busy, Waiting) != Waiting)
        {
            return;
        }

        if (error is not null)
        {
            Volatile.Write(ref _state, Idle);
            _core.RunContinuationsAsynchronously = true;
            _core.SetException(error);
            return;
        }

        ReadResult result;
        if (Interlocked.Exchange(ref _cancelRequested, 0) != 0)
        {
            result = new ReadResult(Buffered, isCanceled: true, isCompleted: false);
        }
        else
        {
            _eof = true;
            result = new ReadResult(Buffered, false, true);
        }

        Finish(result, inline);
    }

    protected void Finish(in ReadResult result, bool inline)
    {
        // Idle before the continuation runs: inline, it goes straight on to the next ReadAsync.
        Interlocked.CompareExchange(ref _state, Idle, Busy);
        _core.RunContinuationsAsynchronously = !inline;
        _core.SetResult(result);
    }

    internal void OnClosed() => CompleteParked(null);

    protected void RegisterCancellation(CancellationToken token)
    {
        short version = _core.Version;
        _waitCancel = token.UnsafeRegister(static (state, t) =>
        {
            var (reader, version) = ((ParkingReader, short))state!;
            if (reader._core.Version == version)
            {
                reader.CompleteParked(new OperationCanceledException(t));
            }
        }, (this, version));
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_buffer is null)
        {
            return;
        }

        int start = ReferenceEquals(consumed.GetObject(), _buffer) ? consumed.GetInteger() : _start;
        int seen = ReferenceEquals(examined.GetObject(), _buffer) ? examined.GetInteger() : start;
        if (start < _start || start > _end || seen < start || seen > _end)
        {
            throw new ArgumentOutOfRangeException(nameof(consumed), "The position is not inside the last buffer read.");
        }

        _start = start;
        _examinedAll = seen == _end;
        if (_start == _end)
        {
            _start = _end = 0;
        }
    }

    public override void CancelPendingRead() => CancelPendingRead(inline: false);

    /// <summary>
    /// A cancel whose reader's continuation may run on the caller's thread (<paramref name="inline"/>): for a
    /// caller that knows the reader only returns (the wait for a server's watch), so nothing hops to the thread pool.
    /// </summary>
    public void CancelPendingRead(bool inline)
    {
        Interlocked.Exchange(ref _cancelRequested, 1);
        CompleteParked(null, inline);
    }

    public override void Complete(Exception? exception = null)
    {
        int previous = Interlocked.Exchange(ref _state, Completed);
        if (previous == Completed)
        {
            return;
        }

        if (previous == Waiting)
        {
            _core.RunContinuationsAsynchronously = true;
            _core.SetResult(new ReadResult(ReadOnlySequence<byte>.Empty, false, true));
        }

        // Busy: the loop is filling the buffer right now; leave it to the garbage collector.
        if (previous != Busy && _buffer is not null)
        {
            ReturnBuffer();
        }
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _waitCancel.Dispose();
            _waitCancel = default;
        }
    }

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
