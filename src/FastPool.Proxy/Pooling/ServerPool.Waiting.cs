using FastPool.Protocol;

namespace FastPool.Proxy.Pooling;

internal sealed partial class ServerPool
{
    /// <summary>
    /// Waits in line for a connection (or for a free slot, handed over as null). Honours reserve_pool_timeout
    /// (after it, the reserve pool may be used) and query_wait_timeout (after it, the client gets an error).
    /// </summary>
    private async ValueTask<ServerConnection?> WaitAsync(CancellationToken ct)
    {
        var waiter = new Waiter();
        lock (_waitLock)
        {
            _waiters.Enqueue(waiter);
            _waiterCount++;
        }

        // A connection or slot may have been freed between the failed attempt and joining the line.
        DispatchIdle();
        TryWakeWithSlot();
        MakeRoomUnderSharedLimits();

        var settings = Settings;
        long start = _time.GetTimestamp();
        if (settings.ReserveSize > 0)
        {
            bool servedEarly;

            // query_wait_timeout still bounds the whole wait when it is shorter than reserve_pool_timeout;
            // then the reserve pool is never reached.
            bool reserveReachable = settings.QueryWaitTimeout <= TimeSpan.Zero || settings.QueryWaitTimeout >= settings.ReserveTimeout;
            var firstWait = reserveReachable ? settings.ReserveTimeout : settings.QueryWaitTimeout;
            try
            {
                servedEarly = await CompletesWithinAsync(waiter.Task, firstWait, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Leave the line; if something was handed over meanwhile, pass it on instead of losing it.
                if (!TryLeave(waiter))
                {
                    GiveBack(await waiter.Task.ConfigureAwait(false));
                }

                throw;
            }

            if (servedEarly)
            {
                return await waiter.Task.ConfigureAwait(false);
            }

            if (reserveReachable && TryReserveSlot(allowReserve: true))
            {
                if (TryLeave(waiter))
                {
                    return null;
                }

                // Served at the same moment: give the reserve slot back and take what we were handed.
                ReleaseSlotQuietly();
                return await waiter.Task.ConfigureAwait(false);
            }
        }

        var remaining = settings.QueryWaitTimeout > TimeSpan.Zero
            ? settings.QueryWaitTimeout - _time.GetElapsedTime(start)
            : Timeout.InfiniteTimeSpan;
        if (remaining != Timeout.InfiniteTimeSpan && remaining < TimeSpan.Zero)
        {
            remaining = TimeSpan.Zero;
        }

        bool served;
        try
        {
            served = await CompletesWithinAsync(waiter.Task, remaining, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            if (TryLeave(waiter))
            {
                throw;
            }

            served = true;
        }

        if (!served && TryLeave(waiter))
        {
            throw new ServerException(SqlState.ProtocolViolation, "query_wait_timeout", "ERROR")
            {
                Detail = $"no server connection for {Key} became free within {settings.QueryWaitTimeout.TotalSeconds:0.###} s",
            };
        }

        var result = await waiter.Task.ConfigureAwait(false);
        if (ct.IsCancellationRequested)
        {
            // The client went away while being served: pass the connection or slot on.
            GiveBack(result);
            ct.ThrowIfCancellationRequested();
        }

        return result;
    }

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

    private async Task<bool> CompletesWithinAsync(Task task, TimeSpan timeout, CancellationToken ct)
    {
        if (task.IsCompleted)
        {
            return true;
        }

        if (timeout == TimeSpan.Zero)
        {
            return false;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var delay = Task.Delay(timeout, _time, cts.Token);
        var first = await Task.WhenAny(task, delay).ConfigureAwait(false);
        cts.Cancel();
        if (first == task)
        {
            return true;
        }

        ct.ThrowIfCancellationRequested();
        return false;
    }

    /// <summary>Hands a connection (or, with null, a reserved slot) to the longest-waiting client.</summary>
    private bool TryHandToWaiter(ServerConnection? server)
    {
        Waiter? chosen = null;
        lock (_waitLock)
        {
            while (_waiters.TryDequeue(out var w))
            {
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

        // Continuations run asynchronously, so the releasing session is never blocked by the waiter's work.
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
                _idle.Enqueue(server);
                Interlocked.Increment(ref _idleCount);
                return;
            }
        }
    }

    private sealed class Waiter
    {
        private readonly TaskCompletionSource<ServerConnection?> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Guarded by the pool's wait lock.</summary>
        public bool Done { get; set; }

        public Task<ServerConnection?> Task => _tcs.Task;

        public void Complete(ServerConnection? server) => _tcs.TrySetResult(server);

        public void Fail(Exception error) => _tcs.TrySetException(error);
    }
}
