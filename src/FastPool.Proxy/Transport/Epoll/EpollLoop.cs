using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace FastPool.Proxy.Transport.Epoll;

/// <summary>A socket registered with an <see cref="EpollLoop"/>: told about readiness on the loop's thread.</summary>
internal interface IEpollRegistration
{
    /// <summary>Slot and generation, as handed to the kernel in epoll_event.data; set by the loop.</summary>
    ulong Token { get; set; }

    /// <summary>Runs on the loop thread; must not block.</summary>
    void OnEvents(uint events);
}

/// <summary>
/// One thread blocked in epoll_wait(2) for a set of sockets, registered once, edge-triggered, for input
/// and output (epoll(7) "Level-triggered and edge-triggered"). Readiness completes the read or send that
/// waits for it right here, on this thread, so the continuation (parse, forward with send(2)) runs
/// without a hand-off to another thread and without the speculative receive that finds nothing.
/// Sockets are found by slot number plus generation, never by pointer: an event that arrives for a socket
/// already closed finds a newer generation and is dropped.
/// </summary>
internal sealed unsafe class EpollLoop : IDisposable
{
    private const int MaxEvents = 256;
    private const ulong WakeToken = ulong.MaxValue;

    private readonly int _epfd;
    private readonly int _wakeFd;
    private readonly Thread _thread;
    private readonly Action<Exception> _onError;
    private readonly Lock _slotLock = new();
    private readonly Stack<int> _freeSlots = new();
    private IEpollRegistration?[] _slots = new IEpollRegistration?[256];
    private uint[] _generations = new uint[256];
    private int _nextSlot;
    private volatile bool _stopping;
    private IdleSpin _spin;
    private readonly int _threadId;

    // Connections whose sockets closed on another thread: the loop gives up its reference on each one's handle
    // (see EpollConnection) on its own thread, between events, so never during one of its own system calls.
    private readonly ConcurrentQueue<EpollConnection> _closedElsewhere = new();
    private bool _drained;

    public EpollLoop(int index, Action<Exception> onError, int idleSpinMicros = 0)
    {
        _onError = onError;
        Index = index;
        _spin = new IdleSpin(idleSpinMicros);
        _epfd = EpollNative.epoll_create1(EpollNative.EPOLL_CLOEXEC);
        if (_epfd < 0)
        {
            throw new SocketException(Marshal.GetLastPInvokeError());
        }

        _wakeFd = EpollNative.eventfd(0, EpollNative.EFD_CLOEXEC | EpollNative.EFD_NONBLOCK);
        if (_wakeFd < 0 || EpollNative.Add(_epfd, _wakeFd, EpollNative.EPOLLIN, WakeToken) != 0)
        {
            int error = Marshal.GetLastPInvokeError();
            _ = EpollNative.close(_epfd);
            throw new SocketException(error);
        }

        _thread = new Thread(Run) { IsBackground = true, Name = $"fastpool-io-{index}" };
        _threadId = _thread.ManagedThreadId;
        _thread.Start();
    }

    /// <summary>Whether the caller runs on this loop's thread.</summary>
    /// <summary>This loop's place among the transport's loops.</summary>
    public int Index { get; }

    public bool IsLoopThread => Environment.CurrentManagedThreadId == _threadId;

    /// <summary>
    /// Has <paramref name="connection"/> give up the loop's reference on its socket: right away on the loop thread
    /// (or once the loop has stopped), otherwise on the loop thread at its next wake-up, which this call causes.
    /// </summary>
    public void ReleaseOnLoop(EpollConnection connection)
    {
        if (IsLoopThread)
        {
            connection.ReleaseLoopReference();
            return;
        }

        // Under the lock Dispose takes: a connection queued before the loop's last drain is drained, one that comes
        // after it is released here, and the eventfd is never written once Dispose may have closed it.
        lock (_slotLock)
        {
            if (!_drained)
            {
                _closedElsewhere.Enqueue(connection);
                if (!_stopping)
                {
                    Wake();
                }

                return;
            }
        }

        connection.ReleaseLoopReference();
    }

    private void Wake()
    {
        ulong one = 1;
        _ = EpollNative.write(_wakeFd, (byte*)&one, sizeof(ulong));
    }

    private void DrainClosed()
    {
        while (_closedElsewhere.TryDequeue(out var connection))
        {
            connection.ReleaseLoopReference();
        }
    }

    /// <summary>Adds a socket (edge-triggered, in and out); returns 0 or the errno of epoll_ctl.</summary>
    public int Register(IEpollRegistration registration, nint fd)
    {
        int slot;
        lock (_slotLock)
        {
            if (!_freeSlots.TryPop(out slot))
            {
                slot = _nextSlot++;
                if (slot == _slots.Length)
                {
                    // Grow by copy and publish: the loop thread reads the array without the lock.
                    var slots = new IEpollRegistration?[slot * 2];
                    var generations = new uint[slot * 2];
                    Array.Copy(_slots, slots, slot);
                    Array.Copy(_generations, generations, slot);
                    _generations = generations;
                    Volatile.Write(ref _slots, slots);
                }
            }

            uint generation = ++_generations[slot];
            registration.Token = ((ulong)generation << 32) | (uint)slot;
            Volatile.Write(ref _slots[slot], registration);
        }

        int error = EpollNative.Add(_epfd, fd,
            EpollNative.EPOLLIN | EpollNative.EPOLLOUT | EpollNative.EPOLLRDHUP | EpollNative.EPOLLET, registration.Token);
        if (error != 0)
        {
            Unregister(registration);
        }

        return error;
    }

    /// <summary>
    /// Frees the slot. The kernel drops the socket from the epoll set when its descriptor closes; an event
    /// still in flight for it carries the old generation and is ignored.
    /// </summary>
    public void Unregister(IEpollRegistration registration)
    {
        int slot = (int)(uint)registration.Token;
        lock (_slotLock)
        {
            if (ReferenceEquals(_slots[slot], registration))
            {
                _slots[slot] = null;
                _freeSlots.Push(slot);
            }
        }
    }

    /// <summary>
    /// Stops watching a socket that stays open (its owner changes, see Connection.Detach): unlike a closed
    /// descriptor, an open one stays in the epoll set until removed. An event already fetched for it carries
    /// the old generation once the slot is freed, and is dropped.
    /// </summary>
    public void Detach(IEpollRegistration registration, nint fd)
    {
        EpollNative.Remove(_epfd, fd);
        Unregister(registration);
    }

    private void Run()
    {
        ConnectionTransport.EnterLoop(Index);
        int stride = EpollNative.EventSize;
        int dataOffset = EpollNative.EventDataOffset;
        byte* events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * stride));
        try
        {
            while (!_stopping)
            {
                LoopClock.Idle();
                int n = 0;
                long budget = _spin.Begin();
                while (budget > 0)
                {
                    n = EpollNative.epoll_wait(_epfd, events, MaxEvents, 0);
                    if (n != 0 || _spin.Expired(budget))
                    {
                        break;
                    }

                    _ = EpollNative.sched_yield();
                }

                bool polled = n != 0;
                if (n == 0)
                {
                    n = EpollNative.epoll_wait(_epfd, events, MaxEvents, -1);
                }

                _spin.End(polled);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == EpollNative.EINTR)
                    {
                        continue;
                    }

                    _onError(new SocketException(errno));
                    return;
                }

                for (int i = 0; i < n; i++)
                {
                    // One clock reading serves up to 16 events of a batch, as PgBouncer's cached time serves a loop
                    // pass: they are microseconds apart, and a round trip's two readings (query sent, answer back)
                    // then usually come from two batches rather than two clock_gettime calls. A full batch of 256
                    // would let the reading lag by up to a millisecond.
                    if ((i & 15) == 0)
                    {
                        LoopClock.Tick();
                    }

                    byte* e = events + (i * stride);
                    uint flags = *(uint*)e;
                    ulong token = *(ulong*)(e + dataOffset);
                    if (token == WakeToken)
                    {
                        // Reset the eventfd (it is level-triggered), then release what other threads closed.
                        ulong value;
                        _ = EpollNative.read(_wakeFd, (byte*)&value, sizeof(ulong));
                        DrainClosed();
                        continue;
                    }

                    // Read the table per event: a registration made during this batch may have grown it.
                    var slots = Volatile.Read(ref _slots);
                    int slot = (int)(uint)token;
                    var registration = slot < slots.Length ? Volatile.Read(ref slots[slot]) : null;
                    if (registration is null || registration.Token != token)
                    {
                        continue;
                    }

                    try
                    {
                        registration.OnEvents(flags);
                    }
                    catch (Exception ex)
                    {
                        // Continuations run here; one failing session must not stop the others.
                        _onError(ex);
                    }
                }
            }
        }
        finally
        {
            NativeMemory.Free(events);
        }
    }

    public void Dispose()
    {
        lock (_slotLock)
        {
            if (_stopping)
            {
                return;
            }

            _stopping = true;
            Wake();
        }

        if (Thread.CurrentThread != _thread)
        {
            _thread.Join(TimeSpan.FromSeconds(5));
        }

        lock (_slotLock)
        {
            _drained = true;
        }

        DrainClosed();

        _ = EpollNative.close(_wakeFd);
        _ = EpollNative.close(_epfd);
    }
}
