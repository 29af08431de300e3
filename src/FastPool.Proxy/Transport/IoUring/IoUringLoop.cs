using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using static FastPool.Proxy.Transport.IoUring.IoUringNative;

namespace FastPool.Proxy.Transport.IoUring;

/// <summary>What a request was for, kept in the top byte of its user_data.</summary>
internal enum IoUringOp : byte
{
    Recv = 1,
    Send = 2,
    Poll = 3,
    Wake = 4,

    /// <summary>Requests whose completions carry nothing FastPool waits for (a cancel of one request).</summary>
    Ignore = 5,

    /// <summary>The cancel of every request of a closing connection; the connection waits for it before closing its descriptor.</summary>
    CancelAll = 6,
}

/// <summary>
/// One thread that owns one <see cref="IoUringRing"/> and the connections placed on it. Each turn it runs the
/// completions in the queue (continuations run right here and queue new requests: the next receive, the
/// forwarded send), then the work other threads posted, then makes one io_uring_enter(2) that both submits
/// everything queued and sleeps until at least one completion arrives. Other threads never touch the ring:
/// they post work and, if the loop may be asleep, write its eventfd, which a read request in the ring is
/// always waiting on.
/// Requests name their connection by slot plus generation in user_data, never by pointer; a slot is freed
/// only after its connection has no request left in flight, and a completion whose generation no longer
/// matches is dropped, as in the epoll loop.
/// </summary>
internal sealed unsafe class IoUringLoop : IDisposable
{
    private const uint RingEntries = 1024;

    // 16 KiB buffers: a pgbench result fits one; 512 of them (8 MiB) serve that many receives completing
    // between two turns, and a receive that finds none (ENOBUFS) is simply sent again.
    private const int ProvidedBuffers = 512;
    private const int ProvidedBufferSize = 16 * 1024;

    private const ulong WakeData = (ulong)IoUringOp.Wake << 56;
    private const ulong IgnoreData = (ulong)IoUringOp.Ignore << 56;

    private readonly Thread _thread;
    private readonly Action<Exception> _onError;
    private readonly ConcurrentQueue<(Action<object?> Action, object? State)> _posted = new();
    private readonly Lock _slotLock = new();
    private readonly Stack<int> _freeSlots = new();
    private IoUringConnection?[] _slots = new IoUringConnection?[256];
    private uint[] _generations = new uint[256];
    private int _nextSlot;
    private IoUringRing? _ring;
    private int _wakeFd = -1;
    private byte* _wakeBuffer;
    private int _wakePending;
    private int _threadId;
    private volatile bool _stopping;
    private IdleSpin _spin;

    public IoUringLoop(int index, Action<Exception> onError, int idleSpinMicros = 0)
    {
        _onError = onError;
        Index = index;
        _spin = new IdleSpin(idleSpinMicros);
        Exception? startError = null;
        using var started = new ManualResetEventSlim();

        // The ring is set up by the thread that will use it: IORING_SETUP_SINGLE_ISSUER makes its creator the
        // only task allowed to submit to it and register with it.
        _thread = new Thread(() =>
        {
            try
            {
                Initialize();
            }
            catch (Exception ex)
            {
                startError = ex;
                started.Set();
                return;
            }

            started.Set();
            try
            {
                Run();
            }
            finally
            {
                if (_stopping)
                {
                    FreeRing();
                }
            }
        })
        { IsBackground = true, Name = $"fastpool-uring-{index}" };
        _thread.Start();
        started.Wait();
        if (startError is not null)
        {
            throw startError;
        }
    }

    /// <summary>This loop's place among the transport's loops.</summary>
    public int Index { get; }

    public bool IsLoopThread => Environment.CurrentManagedThreadId == _threadId;

    /// <summary>The ring; used on the loop thread only.</summary>
    public IoUringRing Ring => _ring!;

    private void Initialize()
    {
        _threadId = Environment.CurrentManagedThreadId;
        _ring = new IoUringRing(RingEntries, ProvidedBuffers, ProvidedBufferSize);
        _wakeFd = eventfd(0, EFD_CLOEXEC);
        if (_wakeFd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            _ring.Dispose();
            throw IoUringUnavailableException.From("eventfd", errno);
        }

        _wakeBuffer = (byte*)NativeMemory.Alloc(sizeof(ulong));
        ArmWake();
    }

    /// <summary>Runs <paramref name="action"/> on the loop thread, before its next wait.</summary>
    public void Post(Action<object?> action, object? state)
    {
        _posted.Enqueue((action, state));
        if (IsLoopThread)
        {
            return;
        }

        // One eventfd write per sleep is enough: the loop clears the flag when the wake arrives, before it
        // drains the queue, so work posted after the drain writes again.
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            ulong one = 1;
            _ = write(_wakeFd, (byte*)&one, sizeof(ulong));
        }
    }

    /// <summary>Takes a slot for a connection; its token (generation and slot) goes into every request's user_data.</summary>
    public ulong Register(IoUringConnection connection)
    {
        lock (_slotLock)
        {
            if (!_freeSlots.TryPop(out int slot))
            {
                slot = _nextSlot++;
                if (slot == _slots.Length)
                {
                    // Grow by copy and publish: the loop thread reads the array without the lock.
                    var slots = new IoUringConnection?[slot * 2];
                    var generations = new uint[slot * 2];
                    Array.Copy(_slots, slots, slot);
                    Array.Copy(_generations, generations, slot);
                    _generations = generations;
                    Volatile.Write(ref _slots, slots);
                }
            }

            // 24 bits of generation: the top byte of user_data holds the operation.
            uint generation = ++_generations[slot] & 0xFFFFFF;
            ulong token = ((ulong)generation << 32) | (uint)slot;
            Volatile.Write(ref _slots[slot], connection);
            return token;
        }
    }

    /// <summary>Frees the slot of a connection with nothing left in flight (loop thread).</summary>
    public void Unregister(IoUringConnection connection, ulong token)
    {
        int slot = (int)(uint)token;
        lock (_slotLock)
        {
            if (ReferenceEquals(_slots[slot], connection))
            {
                _slots[slot] = null;
                _freeSlots.Push(slot);
            }
        }
    }

    /// <summary>
    /// Queues a cancel of every request on <paramref name="fd"/> (IORING_ASYNC_CANCEL_FD | _ALL, 5.19+). Its
    /// completion goes to the connection (<paramref name="userData"/>): the descriptor must stay open until
    /// the cancel has been submitted, or a new socket that reused the number could lose its requests.
    /// </summary>
    public void CancelAll(int fd, ulong userData)
    {
        byte* sqe = Ring.NextSqe();
        sqe[0] = IORING_OP_ASYNC_CANCEL;
        *(int*)(sqe + 4) = fd;
        *(uint*)(sqe + 28) = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
        *(ulong*)(sqe + 32) = userData;
        Ring.ExpectImmediate();
    }

    /// <summary>Queues a cancel of the one request whose user_data is <paramref name="target"/>.</summary>
    public void Cancel(ulong target)
    {
        byte* sqe = Ring.NextSqe();
        sqe[0] = IORING_OP_ASYNC_CANCEL;
        *(int*)(sqe + 4) = -1;
        *(ulong*)(sqe + 16) = target;
        *(ulong*)(sqe + 32) = IgnoreData;
        Ring.ExpectImmediate();
    }

    private void ArmWake()
    {
        byte* sqe = _ring!.NextSqe();
        sqe[0] = IORING_OP_READ;
        *(int*)(sqe + 4) = _wakeFd;
        *(ulong*)(sqe + 8) = ulong.MaxValue; // offset -1: read at the file position, which an eventfd ignores
        *(ulong*)(sqe + 16) = (ulong)_wakeBuffer;
        *(uint*)(sqe + 24) = sizeof(ulong);
        *(ulong*)(sqe + 32) = WakeData;
    }

    private void Run()
    {
        ConnectionTransport.EnterLoop(Index);
        var ring = _ring!;
        while (!_stopping)
        {
            while (ring.TryPeek(out ulong userData, out int result, out uint flags))
            {
                ring.Advance();
                Dispatch(userData, result, flags);
            }

            DrainPosted();
            if (_stopping)
            {
                break;
            }

            LoopClock.Idle();
            int error = 0;
            bool ready = false;
            long budget = _spin.Begin();
            while (budget > 0)
            {
                error = ring.Poll();
                ready = ring.HasCompletion;
                if (ready || (error < 0 && error != -EINTR && error != -EAGAIN && error != -EBUSY) || _spin.Expired(budget))
                {
                    break;
                }

                _ = Epoll.EpollNative.sched_yield();
            }

            if (!ready && error >= 0)
            {
                error = ring.Enter(wait: true);
            }

            _spin.End(ready);
            if (error < 0 && error != -EINTR && error != -EAGAIN && error != -EBUSY)
            {
                _onError(new IoUringUnavailableException($"io_uring_enter failed: errno {-error}; the io_uring loop stops"));
                return;
            }
        }
    }

    private void Dispatch(ulong userData, int result, uint flags)
    {
        var op = (IoUringOp)(userData >> 56);
        if (op == IoUringOp.Wake)
        {
            Volatile.Write(ref _wakePending, 0);
            if (!_stopping)
            {
                ArmWake();
            }

            return;
        }

        if (op == IoUringOp.Ignore)
        {
            return;
        }

        ulong token = userData & 0x00FF_FFFF_FFFF_FFFF;
        var slots = Volatile.Read(ref _slots);
        int slot = (int)(uint)token;
        var connection = slot < slots.Length ? Volatile.Read(ref slots[slot]) : null;
        if (connection is null || connection.Token != token)
        {
            // Cannot happen while slots outlive their requests; if it did, the buffer must still go back.
            if ((flags & IORING_CQE_F_BUFFER) != 0)
            {
                _ring!.RecycleBuffer((ushort)(flags >> IORING_CQE_BUFFER_SHIFT));
            }

            return;
        }

        LoopClock.Tick();
        try
        {
            connection.OnCompletion(op, result, flags);
        }
        catch (Exception ex)
        {
            // Continuations run here; one failing session must not stop the others.
            _onError(ex);
        }
    }

    private void DrainPosted()
    {
        while (_posted.TryDequeue(out var work))
        {
            LoopClock.Tick();
            try
            {
                work.Action(work.State);
            }
            catch (Exception ex)
            {
                _onError(ex);
            }
        }
    }

    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        ulong one = 1;
        _ = write(_wakeFd, (byte*)&one, sizeof(ulong));

        // The ring is unmapped only once its loop has left Run: when Dispose runs on the loop thread (a continuation
        // stopping the proxy), or the loop does not stop within the wait, the loop thread frees it as it exits.
        // Unmapping it under a running loop was an access violation in TryPeek.
        if (!IsLoopThread && _thread.Join(TimeSpan.FromSeconds(5)))
        {
            FreeRing();
        }
    }

    private int _freed;

    /// <summary>Closes the ring and the wake eventfd, once, after the loop has stopped.</summary>
    private void FreeRing()
    {
        if (Interlocked.Exchange(ref _freed, 1) != 0)
        {
            return;
        }

        // Closing the ring cancels whatever is still in flight (io_uring(7)); nothing reads the buffers after. The
        // eight-byte wake buffer is not freed: the kernel cancels the pending eventfd read asynchronously after the
        // close, and must never write into memory handed back to the allocator.
        _ring?.Dispose();
        _ = close(_wakeFd);
    }
}
