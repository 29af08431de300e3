using System.Threading.Tasks.Sources;
using FastPool.Protocol;

namespace FastPool.Proxy.Pooling;

internal sealed partial class ServerPool
{
    // One timer per pool serves every waiter's deadlines (reserve_pool_timeout, query_wait_timeout): it is armed
    // for the earliest one, so a client that waits costs no timer of its own, and one that is served at once
    // costs nothing at all.
    private ITimer? _deadlineTimer;
    private long _timerDue = long.MaxValue;

    // Waiters are reused: in transaction pooling with more clients than servers, nearly every transaction waits, and a
    // fresh waiter per wait was a steady stream of garbage. Under the wait lock.
    private readonly Stack<Waiter> _freeWaiters = new();

    /// <summary>
    /// Waits in line for a connection (or for a free slot, handed over as null). Honours reserve_pool_timeout
    /// (after it, the reserve pool may be used) and query_wait_timeout (after it, the client gets an error).
    /// </summary>
    /// <remarks>
    /// The waiter is completed on the thread that frees the connection, and the waiting session continues right
    /// there (typically the releasing session's I/O loop thread) instead of being queued to the thread pool: a
    /// hand-off in transaction pooling is then one function call, not a thread wake-up.
    /// </remarks>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ServerConnection?> WaitAsync(CancellationToken ct)
    {
        var settings = Settings;
        long now = _time.GetTimestamp();
        Waiter waiter;
        lock (_waitLock)
        {
            waiter = _freeWaiters.TryPop(out var reused) ? reused : new Waiter(this);
        }

        waiter.Reset();
        bool reserveReachable = settings.ReserveSize > 0
            && (settings.QueryWaitTimeout <= TimeSpan.Zero || settings.QueryWaitTimeout >= settings.ReserveTimeout);
        waiter.ReserveAt = reserveReachable ? now + ToTicks(settings.ReserveTimeout) : long.MaxValue;
        waiter.GiveUpAt = settings.QueryWaitTimeout > TimeSpan.Zero ? now + ToTicks(settings.QueryWaitTimeout) : long.MaxValue;
        waiter.Timeout = settings.QueryWaitTimeout;
        lock (_waitLock)
        {
            _waiters.Enqueue(waiter);
            _waiterCount++;
            ArmDeadlineTimer(Math.Min(waiter.ReserveAt, waiter.GiveUpAt), now);
        }

        // A connection or slot may have been freed between the failed attempt and joining the line.
        DispatchIdle();
        TryWakeWithSlot();
        MakeRoomUnderSharedLimits();

        ServerConnection? result;
        try
        {
            using (ct.UnsafeRegister(static state => ((Waiter)state!).Cancel(), waiter))
            {
                result = await new ValueTask<ServerConnection?>(waiter, waiter.Version).ConfigureAwait(false);
            }
        }
        finally
        {
            // The registration is gone (its Dispose waits for a running cancel), and the result was taken: nothing
            // refers to the waiter any more, unless the line still holds it (left there by a timeout or a cancel).
            lock (_waitLock)
            {
                if (waiter.Dequeued)
                {
                    _freeWaiters.Push(waiter);
                }
            }
        }

        if (ct.IsCancellationRequested)
        {
            // The client went away while being served: pass the connection or slot on.
            GiveBack(result);
            ct.ThrowIfCancellationRequested();
        }

        return result;
    }

    private long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    private void GiveBack(ServerConnection? handed)
    {
        if (handed is not null)
        {
            Release(handed);
        }
        else
        {
            ReleaseSlot();
        }
    }

    /// <summary>Arms the deadline timer when <paramref name="due"/> is earlier than what it waits for. Under the wait lock.</summary>
    private void ArmDeadlineTimer(long due, long now)
    {
        if (due == long.MaxValue || due >= _timerDue)
        {
            return;
        }

        _timerDue = due;
        var delay = TimeSpan.FromSeconds(Math.Max(0, due - now) / (double)_time.TimestampFrequency);
        if (_deadlineTimer is null)
        {
            _deadlineTimer = _time.CreateTimer(static state => ((ServerPool)state!).OnDeadline(), this, delay, Timeout.InfiniteTimeSpan);
        }
        else
        {
            _deadlineTimer.Change(delay, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>
    /// The deadline timer fired: waiters past query_wait_timeout get their error, waiters past
    /// reserve_pool_timeout get a reserve slot if one is free; then the timer is armed for the next deadline.
    /// </summary>
    private void OnDeadline()
    {
        List<(Waiter Waiter, bool Reserve)>? due = null;
        long now = _time.GetTimestamp();
        lock (_waitLock)
        {
            _timerDue = long.MaxValue;
            long next = long.MaxValue;
            foreach (var w in _waiters)
            {
                if (w.Done)
                {
                    continue;
                }

                if (now >= w.GiveUpAt)
                {
                    w.Done = true;
                    _waiterCount--;
                    (due ??= []).Add((w, false));
                    continue;
                }

                if (now >= w.ReserveAt)
                {
                    w.ReserveAt = long.MaxValue;
                    if (TryReserveSlot(allowReserve: true))
                    {
                        w.Done = true;
                        _waiterCount--;
                        (due ??= []).Add((w, true));
                        continue;
                    }
                }

                next = Math.Min(next, Math.Min(w.ReserveAt, w.GiveUpAt));
            }

            ArmDeadlineTimer(next, now);
        }

        // Completed outside the lock: each waiter's session continues on this thread.
        if (due is not null)
        {
            foreach (var (w, reserve) in due)
            {
                if (reserve)
                {
                    w.Complete(null);
                }
                else
                {
                    w.Fail(new ServerException(SqlState.ProtocolViolation, "query_wait_timeout", "ERROR")
                    {
                        Detail = $"no server connection for {Key} became free within {w.Timeout.TotalSeconds:0.###} s",
                    });
                }
            }
        }
    }

    /// <summary>Hands a connection (or, with null, a reserved slot) to the longest-waiting client.</summary>
    private bool TryHandToWaiter(ServerConnection? server)
    {
        Waiter? chosen = null;
        lock (_waitLock)
        {
            while (_waiters.TryDequeue(out var w))
            {
                w.Dequeued = true;
                if (!w.Done)
                {
                    w.Done = true;
                    _waiterCount--;
                    chosen = w;
                    break;
                }
            }
        }

        if (chosen is null)
        {
            return false;
        }

        chosen.Complete(server);
        return true;
    }

    /// <summary>Leaves the line; false if a connection was handed over first.</summary>
    private bool TryLeave(Waiter waiter)
    {
        lock (_waitLock)
        {
            if (waiter.Done)
            {
                return false;
            }

            waiter.Done = true;
            _waiterCount--;
            return true;
        }
    }

    private void DispatchIdle()
    {
        while (Volatile.Read(ref _waiterCount) > 0 && TryTakeIdle(out var server))
        {
            if (!TryHandToWaiter(server))
            {
                _idle.Add(server);
                return;
            }
        }
    }

    /// <summary>
    /// Every waiter leaves the line: with null (shutdown: they then see the pool closed), or failed with
    /// <paramref name="error"/> (the node is detached: the failover stage sends them to the new primary).
    /// </summary>
    private void ReleaseAllWaiters(Exception? error = null)
    {
        List<Waiter> all = [];
        lock (_waitLock)
        {
            while (_waiters.TryDequeue(out var w))
            {
                w.Dequeued = true;
                if (!w.Done)
                {
                    w.Done = true;
                    _waiterCount--;
                    all.Add(w);
                }
            }

            _deadlineTimer?.Dispose();
            _deadlineTimer = null;
            _timerDue = long.MaxValue;
        }

        foreach (var w in all)
        {
            if (error is null)
            {
                w.Complete(null);
            }
            else
            {
                w.Fail(error);
            }
        }
    }

    /// <summary>
    /// One client's place in line. Completed exactly once per wait: whoever completes it first marks it done under the
    /// wait lock. Reused once its wait is over and the line no longer holds it.
    /// </summary>
    private sealed class Waiter(ServerPool pool) : IValueTaskSource<ServerConnection?>
    {
        // Continuations run on the completing thread (see WaitAsync): RunContinuationsAsynchronously stays false.
        private ManualResetValueTaskSourceCore<ServerConnection?> _core;

        /// <summary>Guarded by the pool's wait lock.</summary>
        public bool Done { get; set; }

        /// <summary>Taken out of the line (not just marked done in it). Guarded by the pool's wait lock.</summary>
        public bool Dequeued { get; set; }

        public short Version => _core.Version;

        /// <summary>When the reserve pool may be tried (timestamp); MaxValue once tried or when unreachable. Under the wait lock.</summary>
        public long ReserveAt { get; set; }

        /// <summary>When query_wait_timeout ends the wait (timestamp); MaxValue for no limit.</summary>
        public long GiveUpAt { get; set; }

        public TimeSpan Timeout { get; set; }

        /// <summary>Ready for a new wait; only by the waiting client, before it joins the line.</summary>
        public void Reset()
        {
            _core.Reset();
            Done = false;
            Dequeued = false;
        }

        public void Complete(ServerConnection? server) => _core.SetResult(server);

        public void Fail(Exception error) => _core.SetException(error);

        /// <summary>The client stopped waiting: leave the line unless something was handed over already.</summary>
        public void Cancel()
        {
            if (pool.TryLeave(this))
            {
                _core.SetException(new OperationCanceledException());
            }
        }

        ServerConnection? IValueTaskSource<ServerConnection?>.GetResult(short token) => _core.GetResult(token);

        ValueTaskSourceStatus IValueTaskSource<ServerConnection?>.GetStatus(short token) => _core.GetStatus(token);

        void IValueTaskSource<ServerConnection?>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
