using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace FastPool.Proxy.Transport;

/// <summary>
/// One socket, client or server side, as the rest of FastPool sees it: input is a PipeReader over what the
/// socket received, output is a direct send of the caller's buffers (awaiting the send is the backpressure;
/// nothing is copied into an output pipe). Exactly one reader and one sender at a time; the session
/// guarantees that. A <see cref="ConnectionTransport"/> makes them; no other code knows which transport is running.
/// </summary>
internal abstract class Connection : IAsyncDisposable
{
    private int _closed;
    private string? _remoteEndPoint;

    protected Connection(Socket socket)
    {
        Socket = socket;
        if (socket.AddressFamily != AddressFamily.Unix)
        {
            socket.NoDelay = true;
        }
    }

    public abstract PipeReader Input { get; }

    /// <summary>
    /// Cancels a pending read of <see cref="Input"/> whose continuation is known to be short and non-blocking, so
    /// a transport that can may run it on the calling thread instead of the thread pool.
    /// </summary>
    public virtual void CancelPendingReadInline() => Input.CancelPendingRead();

    /// <summary>
    /// The peer's address, read on first use: during a non-blocking connect, .NET's Socket.RemoteEndPoint
    /// consumes the pending SO_ERROR, which the epoll transport needs to see whether the connect failed.
    /// </summary>
    public string RemoteEndPoint => _remoteEndPoint ??= SafeRemote(Socket);

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    public Socket Socket { get; }

    /// <summary>
    /// True when the peer closed the socket or sent something while nobody was reading: for an idle pooled
    /// server, either means it must not be handed out (PostgreSQL sends nothing to an idle session except a
    /// FATAL before it exits, e.g. after pg_terminate_backend or a shutdown).
    /// </summary>
    public virtual bool HasUnexpectedInput()
    {
        try
        {
            return IsClosed || HasBufferedInput || Socket.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    /// <summary>Input the transport already took off the socket that no read has asked for yet.</summary>
    protected virtual bool HasBufferedInput => false;

    public abstract ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default);

    /// <summary>Whether <see cref="TrySendNow"/> can send (a plain socket of a native transport).</summary>
    public virtual bool CanSendNow => false;

    /// <summary>
    /// Sends as much as the socket takes now, on the caller's thread: true when all of it went. Otherwise
    /// <paramref name="sent"/> says how much did, and the rest goes by <see cref="SendAsync(ReadOnlyMemory{byte}, CancellationToken)"/>,
    /// which waits for room or reports the error. Never while another send is unfinished.
    /// </summary>
    public virtual bool TrySendNow(ReadOnlySpan<byte> data, out int sent)
    {
        sent = 0;
        return data.IsEmpty;
    }

    /// <summary>
    /// Has <paramref name="consumer"/> take what arrives while a read of <see cref="Input"/> is parked (null stops
    /// it); false when the transport cannot. Set and cleared only by the one reader of <see cref="Input"/>.
    /// </summary>
    public virtual bool TrySetInlineConsumer(IInlineConsumer? consumer) => false;

    /// <summary>The transport loop whose thread serves this connection's events, or -1 when none does.</summary>
    public virtual int LoopIndex => -1;

    /// <summary>
    /// Has <paramref name="watcher"/> told once the peer closes or resets the connection (at once if it already
    /// has), while nobody reads it; false when the transport cannot, and a pending read must watch instead.
    /// </summary>
    public virtual bool TryWatchHangup(IHangupWatcher watcher) => false;

    /// <summary>Ends <see cref="TryWatchHangup"/>; a hang-up being reported at that moment may still be.</summary>
    public virtual void StopWatchingHangup()
    {
    }

    /// <summary>Sends a (possibly multi-segment) slice of a read buffer without copying it.</summary>
    public ValueTask SendAsync(in ReadOnlySequence<byte> data, CancellationToken ct = default)
    {
        if (data.IsSingleSegment)
        {
            return SendAsync(data.First, ct);
        }

        return SendSegmentsAsync(data, ct);
    }

    private async ValueTask SendSegmentsAsync(ReadOnlySequence<byte> data, CancellationToken ct)
    {
        foreach (var segment in data)
        {
            await SendAsync(segment, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Ends the connection: shuts the socket so a pending read or send on it completes, then frees it.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        try
        {
            Socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        OnAborted();
        if (!ClosesSocketItself)
        {
            Socket.Dispose();
        }
    }

    /// <summary>
    /// The subclass frees the socket itself once nothing it queued refers to its descriptor any more (io_uring's
    /// requests name the descriptor by number, and a number closed under them could be reused by a new socket).
    /// </summary>
    protected virtual bool ClosesSocketItself => false;

    /// <summary>
    /// Hands the open socket to a new owner (a <see cref="TlsConnection"/> after the SSLRequest exchange) and ends
    /// this connection without closing it: it stops reading and sending, and a later Abort or Dispose leaves the
    /// socket alone. The caller must have consumed everything <see cref="Input"/> returned and must have no read or
    /// send pending: bytes still buffered here would be lost to the new owner.
    /// </summary>
    public Socket Detach()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            throw new ObjectDisposedException(nameof(Connection), "the connection is closed or already detached");
        }

        OnDetaching();

        // NetworkStream, which the new owner builds on, insists on a blocking socket; .NET still does its
        // asynchronous operations without blocking a thread.
        Socket.Blocking = true;
        return Socket;
    }

    /// <summary>Called once by <see cref="Detach"/>: stop reading and watching the socket, without closing it.</summary>
    protected abstract void OnDetaching();

    /// <summary>Called once by <see cref="Abort"/> after the socket is shut and before it is freed.</summary>
    protected virtual void OnAborted()
    {
    }

    public async ValueTask DisposeAsync()
    {
        Abort();
        await Input.CompleteAsync().ConfigureAwait(false);
        await DisposeCoreAsync().ConfigureAwait(false);
    }

    protected virtual ValueTask DisposeCoreAsync() => default;

    private static string SafeRemote(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint switch
            {
                IPEndPoint ip => ip.ToString(),
                UnixDomainSocketEndPoint => "unix",
                { } other => other.ToString() ?? "?",
                null => "?",
            };
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return "?";
        }
    }
}
