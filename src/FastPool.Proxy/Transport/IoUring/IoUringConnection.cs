using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;
using FastPool.Proxy.Transport.Epoll;
using static FastPool.Proxy.Transport.IoUring.IoUringNative;

namespace FastPool.Proxy.Transport.IoUring;

/// <summary>
/// A connection on an <see cref="IoUringLoop"/>. On the loop thread a send is an IORING_OP_SEND of the
/// caller's memory, pinned until its completion, which is when the caller's ValueTask completes (the
/// session keeps the slice alive until then); it goes out with the loop's next io_uring_enter together with
/// everything else queued, so forwarding costs no system call of its own. From other threads (logins,
/// releases, timers) a send is a direct send(2), queued to the ring only for what does not fit (EAGAIN).
/// <para>
/// The ring's requests name the socket's own descriptor, so the socket is closed only when nothing is in
/// flight (<see cref="ClosesSocketItself"/>): a request queued with a number closed under it could reach a new
/// socket that reused the number. shutdown(2) in Abort ends the requests in flight (a receive sees end of
/// stream, a send EPIPE), and an IORING_OP_ASYNC_CANCEL for the descriptor ends any other (a connect's poll).
/// One descriptor per connection, as on the other transports: a duplicate would halve the clients the
/// open-file limit allows.
/// </para>
/// </summary>
internal sealed class IoUringConnection : Connection, IValueTaskSource, INonBlockingConnect
{
    private readonly IoUringLoop _loop;
    private readonly SafeSocketHandle _handle;
    private readonly IoUringReader _reader;
    private readonly int _fd;

    // Loop-thread state.
    private int _inFlight;
    private bool _closing;
    private bool _fdClosed;
    private bool _detached;

    // The one send (or connect wait) in progress; the session sends one thing at a time.
    private ManualResetValueTaskSourceCore<bool> _sendCore;
    private ReadOnlyMemory<byte> _sendData;
    private MemoryHandle _sendPin;
    private int _sendOffset;
    private bool _sendInFlight;

    // The socket buffer was full at the last attempt: the next send will most likely wait for room.
    private bool _sendMayBlock;
    private CancellationToken _sendToken;
    private CancellationTokenRegistration _sendCancel;

    private IoUringConnection(Socket socket, IoUringLoop loop, bool idleMostly)
        : base(socket)
    {
        socket.Blocking = false;
        _loop = loop;
        _handle = socket.SafeHandle;
        _fd = (int)_handle.DangerousGetHandle();

        _reader = new IoUringReader(this, idleMostly);
        Token = loop.Register(this);
    }

    public override PipeReader Input => _reader;

    public override void CancelPendingReadInline() => _reader.CancelPendingRead(inline: true);

    /// <summary>Generation and slot on the loop (the low 56 bits of every request's user_data).</summary>
    public ulong Token { get; }

    internal IoUringLoop Loop => _loop;

    public override int LoopIndex => _loop.Index;

    internal int Fd => _fd;

    /// <summary>True once the connection is closing (loop thread): no new request may be queued.</summary>
    internal bool Closing => _closing;

    /// <summary>Wraps an accepted (client) or connected socket.</summary>
    public static IoUringConnection Wrap(Socket socket, IoUringLoop loop, bool idleMostly) => new(socket, loop, idleMostly);

    /// <summary>A non-blocking connect(2) whose completion is a POLLOUT poll in the ring; SO_ERROR says how it went.</summary>
    public static ValueTask<Connection> ConnectAsync(Socket socket, EndPoint remote, IoUringLoop loop, CancellationToken ct) =>
        NonBlockingConnect.ConnectAsync(socket, remote, s => new IoUringConnection(s, loop, idleMostly: false), ct);

    /// <summary>The user_data of a request of this connection.</summary>
    internal ulong UserData(IoUringOp op) => Token | ((ulong)op << 56);

    /// <summary>Counts a request queued for this connection (loop thread); its completion uncounts it.</summary>
    internal void Queued() => _inFlight++;

    internal void OnCompletion(IoUringOp op, int result, uint flags)
    {
        _inFlight--;
        switch (op)
        {
            case IoUringOp.Recv:
                _reader.OnReceived(result, flags);
                break;
            case IoUringOp.Send:
                OnSent(result);
                break;
            case IoUringOp.Poll:
                OnPolled(result);
                break;
        }

        TryFinish();
    }

    protected override bool HasBufferedInput => _reader.HasStashedInput;

    public override ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        if (data.IsEmpty)
        {
            return default;
        }

        if (IsClosed)
        {
            return ValueTask.FromException(Aborted());
        }

        if (ct.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(ct);
        }

        if (!_loop.IsLoopThread)
        {
            int sent = SendNow(data.Span, out int errno);
            if (sent == data.Length)
            {
                return default;
            }

            if (errno != EAGAIN)
            {
                return ValueTask.FromException(SendError(errno));
            }

            data = data[sent..];
        }

        _sendMayBlock = !_loop.IsLoopThread;
        _sendCore.Reset();
        _sendData = data;
        _sendOffset = 0;
        _sendPin = data.Pin();
        _sendToken = ct;
        if (ct.CanBeCanceled)
        {
            _sendCancel = ct.UnsafeRegister(static s => ((IoUringConnection)s!).PostCancelSend(), this);
        }

        if (_loop.IsLoopThread)
        {
            SubmitSend();
        }
        else
        {
            _loop.Post(static s => ((IoUringConnection)s!).SubmitSend(), this);
        }

        return new ValueTask(this, _sendCore.Version);
    }

    private unsafe void SubmitSend()
    {
        if (_closing)
        {
            FinishSend(Aborted());
            return;
        }

        byte* sqe = _loop.Ring.NextSqe();
        sqe[0] = IORING_OP_SEND;
        *(int*)(sqe + 4) = _fd;
        *(ulong*)(sqe + 16) = (ulong)((byte*)_sendPin.Pointer + _sendOffset);
        *(uint*)(sqe + 24) = (uint)(_sendData.Length - _sendOffset);
        *(int*)(sqe + 28) = MSG_NOSIGNAL;
        *(ulong*)(sqe + 32) = UserData(IoUringOp.Send);
        if (!_sendMayBlock)
        {
            _loop.Ring.ExpectImmediate();
        }

        _sendInFlight = true;
        Queued();
    }

    private void OnSent(int result)
    {
        _sendInFlight = false;
        if (result > 0)
        {
            _sendOffset += result;
            if (_sendOffset == _sendData.Length)
            {
                FinishSend(null);
                return;
            }
        }

        if (_sendToken.IsCancellationRequested)
        {
            FinishSend(new OperationCanceledException(_sendToken));
        }
        else if (result > 0 || result == -EINTR || result == -EAGAIN)
        {
            // A partial send (the socket buffer filled): the rest goes when there is room, in order, since
            // this is the connection's only send in flight.
            _sendMayBlock = true;
            SubmitSend();
        }
        else
        {
            FinishSend(result == 0 ? Aborted() : SendError(-result));
        }
    }

    private void FinishSend(Exception? error)
    {
        _sendPin.Dispose();
        _sendPin = default;
        _sendData = default;

        // On the loop thread the sender continues right here (the next read or send is queued in this turn).
        _sendCore.RunContinuationsAsynchronously = !_loop.IsLoopThread;
        if (error is null)
        {
            _sendCore.SetResult(true);
        }
        else
        {
            _sendCore.SetException(error);
        }
    }

    private void PostCancelSend() => _loop.Post(static s =>
    {
        var c = (IoUringConnection)s!;

        // The send (or poll) in flight may by now be a later one, under another token.
        if (c._sendInFlight && c._sendToken.IsCancellationRequested)
        {
            c._loop.Cancel(c.UserData(c._sendData.IsEmpty ? IoUringOp.Poll : IoUringOp.Send));
        }
    }, this);

    /// <summary>send(2) until done, full (EAGAIN) or failed, holding the socket's handle so Abort cannot close it meanwhile.</summary>
    private int SendNow(ReadOnlySpan<byte> data, out int errno) => NonBlockingSend.Send(_handle, data, out errno);

    /// <summary>Waits until the socket is writable (connect(2) finished) through a POLLOUT poll in the ring.</summary>
    public ValueTask WaitWritableAsync(CancellationToken ct)
    {
        _sendCore.Reset();
        _sendData = default;
        _sendToken = ct;
        if (ct.CanBeCanceled)
        {
            _sendCancel = ct.UnsafeRegister(static s => ((IoUringConnection)s!).PostCancelSend(), this);
        }

        _loop.Post(static s => ((IoUringConnection)s!).SubmitPoll(), this);
        return new ValueTask(this, _sendCore.Version);
    }

    private unsafe void SubmitPoll()
    {
        if (_closing)
        {
            FinishSend(Aborted());
            return;
        }

        byte* sqe = _loop.Ring.NextSqe();
        sqe[0] = IORING_OP_POLL_ADD;
        *(int*)(sqe + 4) = _fd;
        *(uint*)(sqe + 28) = POLLOUT | POLLERR | POLLHUP;
        *(ulong*)(sqe + 32) = UserData(IoUringOp.Poll);
        _sendInFlight = true;
        Queued();
    }

    private void OnPolled(int result)
    {
        _sendInFlight = false;
        if (result >= 0)
        {
            FinishSend(null);
        }
        else
        {
            FinishSend(_sendToken.IsCancellationRequested ? new OperationCanceledException(_sendToken) : _closing ? Aborted() : SendError(-result));
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
            return getsockopt(_handle.DangerousGetHandle(), SOL_SOCKET, SO_ERROR, &value, &length) == 0
                ? value
                : Marshal.GetLastPInvokeError();
        }
        catch (ObjectDisposedException)
        {
            return EPIPE;
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
        _loop.Post(static s => ((IoUringConnection)s!).BeginClose(), this);
    }

    protected override bool ClosesSocketItself => true;

    /// <summary>
    /// The socket moves to a TLS connection (on .NET sockets): no request of this connection may touch it any
    /// more. The caller has no read pending (Connection.Detach's contract), so nothing is in flight but, at
    /// most, a receive left from a cancelled read; it is cancelled on the loop, which then lets the socket go
    /// without closing it: it stays open and is not shut down.
    /// </summary>
    protected override void OnDetaching()
    {
        _detached = true;
        _reader.Complete();
        _loop.Post(static s => ((IoUringConnection)s!).BeginClose(), this);
    }

    /// <summary>Loop thread: no new requests; cancel those in flight; free everything once they are back.</summary>
    private void BeginClose()
    {
        if (_closing)
        {
            return;
        }

        _closing = true;
        if (_inFlight > 0)
        {
            _loop.CancelAll(_fd, UserData(IoUringOp.CancelAll));
            Queued();
        }

        _reader.OnClosing();
        TryFinish();
    }

    private void TryFinish()
    {
        if (!_closing || _inFlight > 0 || _fdClosed)
        {
            return;
        }

        _fdClosed = true;
        if (!_detached)
        {
            // Aborted: nothing refers to the descriptor any more. Detached: the socket is the new owner's.
            Socket.Dispose();
        }

        _reader.ReleaseStash();
        _loop.Unregister(this, Token);
    }

    private static SocketException Aborted() => new((int)SocketError.ConnectionAborted);

    private static SocketException SendError(int errno) =>
        new((int)(errno == EPIPE ? SocketError.ConnectionAborted : Errno.ToSocketError(errno)));

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
            _sendToken = default;
        }
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _sendCore.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _sendCore.OnCompleted(continuation, state, token, flags);
}
