using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace FastPool.Proxy.Transport.Epoll;

/// <summary>
/// A connection on an <see cref="EpollLoop"/>. Sends go straight to send(2) on the caller's thread and only
/// wait (for an EPOLLOUT edge) when the socket buffer is full; reads are <see cref="EpollReader"/>'s. A
/// concurrent Abort can never close the descriptor under a system call (and a reused descriptor number can never
/// be read by mistake): the loop holds a reference on the socket's SafeHandle from registration until it gives it
/// back on its own thread after the connection closed, so calls on the loop thread (nearly all of them) need no
/// reference of their own; a call on any other thread takes one for its duration.
/// </summary>
internal sealed class EpollConnection : Connection, IEpollRegistration, IValueTaskSource, INonBlockingConnect
{
    private const int Idle = 0;
    private const int Ready = 1;
    private const int Waiting = 2;

    private readonly EpollLoop _loop;
    private readonly SafeSocketHandle _handle;
    private readonly nint _fd;
    private readonly EpollReader _reader;

    // The loop's reference on _handle: taken once registered, given back on the loop thread (ReleaseOnLoop), and
    // read only there, so while it is set the descriptor is open for every call the loop thread makes.
    private bool _loopHolds;
    private int _releaseAsked;
    private ManualResetValueTaskSourceCore<bool> _sendCore;
    private CancellationTokenRegistration _sendCancel;
    private int _sendState;

    private EpollConnection(Socket socket, EpollLoop loop, bool idleMostly)
        : base(socket)
    {
        socket.Blocking = false;
        _loop = loop;
        _handle = socket.SafeHandle;
        _fd = _handle.DangerousGetHandle();
        _reader = new EpollReader(this, idleMostly);
        int error = loop.Register(this, _fd);
        if (error != 0)
        {
            throw new SocketException((int)Errno.ToSocketError(error));
        }

        _handle.DangerousAddRef(ref _loopHolds);
    }

    /// <summary>The descriptor is open for a call made now without a reference of the caller's own.</summary>
    private bool LoopHoldsHandle => _loop.IsLoopThread && _loopHolds;

    /// <summary>Gives back the loop's reference; on the loop thread (EpollLoop.ReleaseOnLoop).</summary>
    internal void ReleaseLoopReference()
    {
        if (_loopHolds)
        {
            _loopHolds = false;
            _handle.DangerousRelease();
        }
    }

    /// <summary>The connection is closed or leaves the loop: the loop's reference goes, once.</summary>
    private void ReleaseLoopReferenceOnLoop()
    {
        if (Interlocked.Exchange(ref _releaseAsked, 1) == 0)
        {
            _loop.ReleaseOnLoop(this);
        }
    }

    public override PipeReader Input => _reader;

    public override void CancelPendingReadInline() => _reader.CancelPendingRead(inline: true);

    /// <summary>The pool asks this before every hand-out: answered from the loop's own records, no poll(2), when it can be.</summary>
    public override bool HasUnexpectedInput() => IsClosed || (_reader.UnreadInput ?? base.HasUnexpectedInput());

    public ulong Token { get; set; }

    /// <summary>Wraps an accepted (client) or connected socket.</summary>
    public static EpollConnection Wrap(Socket socket, EpollLoop loop, bool idleMostly) => new(socket, loop, idleMostly);

    /// <summary>A non-blocking connect(2) whose completion is the socket's first EPOLLOUT edge; SO_ERROR says how it went.</summary>
    public static ValueTask<Connection> ConnectAsync(Socket socket, EndPoint remote, EpollLoop loop, CancellationToken ct) =>
        NonBlockingConnect.ConnectAsync(socket, remote, s => new EpollConnection(s, loop, idleMostly: false), ct);

    void IEpollRegistration.OnEvents(uint events)
    {
        if ((events & (EpollNative.EPOLLIN | EpollNative.EPOLLRDHUP | EpollNative.EPOLLHUP | EpollNative.EPOLLERR)) != 0)
        {
            _reader.OnReadable((events & (EpollNative.EPOLLRDHUP | EpollNative.EPOLLHUP | EpollNative.EPOLLERR)) != 0);
        }

        if ((events & (EpollNative.EPOLLOUT | EpollNative.EPOLLHUP | EpollNative.EPOLLERR)) != 0)
        {
            OnWritable();
        }
    }

    /// <summary>recv(2) without blocking; returns bytes, 0 at end of stream or when closed, -1 with errno.</summary>
    internal unsafe nint Receive(byte* buffer, int length, out int errno)
    {
        errno = 0;
        if (IsClosed)
        {
            return 0;
        }

        if (LoopHoldsHandle)
        {
            return Receive(_fd, buffer, length, out errno);
        }

        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            return Receive(_fd, buffer, length, out errno);
        }
        catch (ObjectDisposedException)
        {
            return 0;
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    private static unsafe nint Receive(nint fd, byte* buffer, int length, out int errno)
    {
        nint n;
        do
        {
            n = EpollNative.recv(fd, buffer, length, EpollNative.MSG_DONTWAIT);
            errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
        while (errno == EpollNative.EINTR);
        return n;
    }

    public override ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        int sent = SendNow(data.Span, out int errno);
        if (sent == data.Length)
        {
            return default;
        }

        if (errno != EpollNative.EAGAIN)
        {
            return ValueTask.FromException(SendError(errno));
        }

        return SendRestAsync(data[sent..], ct);
    }

    public override bool CanSendNow => true;

    public override bool TrySendNow(ReadOnlySpan<byte> data, out int sent)
    {
        sent = SendNow(data, out _);
        return sent == data.Length;
    }

    public override int LoopIndex => _loop.Index;

    public override bool TrySetInlineConsumer(IInlineConsumer? consumer)
    {
        _reader.InlineConsumer = consumer;
        return true;
    }

    public override bool TryWatchHangup(IHangupWatcher watcher)
    {
        _reader.WatchHangup(watcher);
        return true;
    }

    public override void StopWatchingHangup() => _reader.StopWatchingHangup();

    private async ValueTask SendRestAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (data.Length > 0)
        {
            await WaitWritableAsync(ct).ConfigureAwait(false);
            int sent = SendNow(data.Span, out int errno);
            data = data[sent..];
            if (data.Length > 0 && errno != EpollNative.EAGAIN)
            {
                throw SendError(errno);
            }
        }
    }

    /// <summary>send(2) until done or the socket is full (EAGAIN) or failed; returns the bytes sent.</summary>
    private int SendNow(ReadOnlySpan<byte> data, out int errno)
    {
        if (data.IsEmpty || IsClosed)
        {
            errno = data.IsEmpty ? 0 : Errno.EPIPE;
            return 0;
        }

        return LoopHoldsHandle ? NonBlockingSend.Send(_fd, data, out errno) : NonBlockingSend.Send(_handle, data, out errno);
    }

    private static SocketException SendError(int errno) =>
        new((int)(errno == Errno.EPIPE ? SocketError.ConnectionAborted : Errno.ToSocketError(errno)));

    /// <summary>Waits for the next EPOLLOUT edge (room in the socket buffer, or connect(2) finished).</summary>
    public ValueTask WaitWritableAsync(CancellationToken ct)
    {
        // An edge since the last attempt means there may be room again: try at once rather than wait.
        if (Interlocked.Exchange(ref _sendState, Idle) == Ready)
        {
            return default;
        }

        _sendCore.Reset();
        if (Interlocked.CompareExchange(ref _sendState, Waiting, Idle) != Idle)
        {
            Volatile.Write(ref _sendState, Idle);
            return default;
        }

        if (ct.CanBeCanceled)
        {
            _sendCancel = ct.UnsafeRegister(static (state, token) => ((EpollConnection)state!).FailSendWait(new OperationCanceledException(token)), this);
        }

        if (IsClosed)
        {
            FailSendWait(new SocketException((int)SocketError.ConnectionAborted));
        }

        return new ValueTask(this, _sendCore.Version);
    }

    private void OnWritable()
    {
        while (true)
        {
            int state = Volatile.Read(ref _sendState);
            if (state == Waiting)
            {
                if (Interlocked.CompareExchange(ref _sendState, Idle, Waiting) == Waiting)
                {
                    // On the loop thread: the sender continues right here.
                    _sendCore.RunContinuationsAsynchronously = false;
                    _sendCore.SetResult(true);
                    return;
                }
            }
            else if (state == Ready || Interlocked.CompareExchange(ref _sendState, Ready, state) == state)
            {
                return;
            }
        }
    }

    private void FailSendWait(Exception error)
    {
        if (Interlocked.CompareExchange(ref _sendState, Idle, Waiting) == Waiting)
        {
            _sendCore.RunContinuationsAsynchronously = true;
            _sendCore.SetException(error);
        }
    }

    public unsafe int PendingError()
    {
        int value = 0;
        int length = sizeof(int);
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            return EpollNative.getsockopt(_handle.DangerousGetHandle(), EpollNative.SOL_SOCKET, EpollNative.SO_ERROR, &value, &length) == 0
                ? value
                : Marshal.GetLastPInvokeError();
        }
        catch (ObjectDisposedException)
        {
            return Errno.EPIPE;
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    protected override void OnAborted()
    {
        _reader.OnClosed();
        FailSendWait(new SocketException((int)SocketError.ConnectionAborted));
        _loop.Unregister(this);
        ReleaseLoopReferenceOnLoop();
    }

    /// <summary>
    /// The socket moves to a TLS connection (on .NET sockets): leave the loop for good, so TLS traffic no longer
    /// wakes it, and give the read buffer back (the caller checked it holds nothing). The descriptor stays open.
    /// </summary>
    protected override void OnDetaching()
    {
        _loop.Detach(this, _fd);
        _reader.Complete();
        ReleaseLoopReferenceOnLoop();
    }

    void IValueTaskSource.GetResult(short token)
    {
        try
        {
            _sendCore.GetResult(token);
        }
        finally
        {
            _sendCancel.Dispose();
            _sendCancel = default;
        }
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _sendCore.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _sendCore.OnCompleted(continuation, state, token, flags);
}

/// <summary>errno values the transport reports (Linux asm-generic/errno.h) and their SocketError names.</summary>
internal static class Errno
{
    public const int EPIPE = 32;

    public static SocketError ToSocketError(int errno) => errno switch
    {
        104 => SocketError.ConnectionReset,
        110 => SocketError.TimedOut,
        111 => SocketError.ConnectionRefused,
        113 => SocketError.HostUnreachable,
        101 => SocketError.NetworkUnreachable,
        99 => SocketError.AddressNotAvailable,
        EPIPE => SocketError.Shutdown,
        EpollNative.EAGAIN => SocketError.WouldBlock,
        24 or 23 => SocketError.TooManyOpenSockets,
        12 or 105 => SocketError.NoBufferSpaceAvailable,
        _ => SocketError.SocketError,
    };
}
