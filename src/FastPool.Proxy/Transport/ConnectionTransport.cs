using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using FastPool.Proxy.Transport.Epoll;
using FastPool.Proxy.Transport.IoUring;

namespace FastPool.Proxy.Transport;

/// <summary>Which transport moves the bytes: <c>[fastpool] transport</c>.</summary>
public enum TransportKind
{
    /// <summary>epoll on Linux, .NET sockets elsewhere or when epoll cannot start.</summary>
    Auto,

    /// <summary>FastPool's own edge-triggered epoll loops (Linux).</summary>
    Epoll,

    /// <summary>.NET's socket engine (portable).</summary>
    Sockets,

    /// <summary>FastPool's own io_uring loops (Linux 6.1+); experimental, never chosen by <see cref="Auto"/> yet.</summary>
    IoUring,
}

/// <summary>
/// Makes <see cref="Connection"/>s for accepted client sockets and for new server sockets. The only place
/// that knows which transport runs; one per proxy, disposed with it.
/// </summary>
internal abstract class ConnectionTransport : IDisposable
{
    public abstract string Name { get; }

    /// <summary>Why this transport was chosen (for the startup log line).</summary>
    public string Reason { get; protected init; } = string.Empty;

    /// <summary>Open files one connection takes (the io_uring transport keeps a duplicate for the ring's requests).</summary>
    public virtual int DescriptorsPerConnection => 1;

    /// <summary>How many loop threads serve the connections (0: the transport has none of its own).</summary>
    public virtual int LoopCount => 0;

    // The loop index + 1 of the current thread (0 off the loops), so a thread that never set it reads -1.
    [ThreadStatic]
    private static int t_loopPlusOne;

    /// <summary>The index of the loop whose thread is running (<see cref="Connection.LoopIndex"/>), or -1 on any other thread.</summary>
    public static int CurrentLoop => t_loopPlusOne - 1;

    /// <summary>A loop thread says which it is, once, before it runs.</summary>
    internal static void EnterLoop(int index)
    {
        t_loopPlusOne = index + 1;

        // Nothing the loops resume carries an ExecutionContext (FastPool sets no AsyncLocal), and with the flow
        // suppressed for good on this thread an await made here captures none: a session's continuations, resumed
        // by the loop a few times per transaction, then run without an ExecutionContext switch around each.
        _ = ExecutionContext.SuppressFlow();
    }

    /// <summary>An accepted client socket. Clients mostly wait, so their idle reads pin no buffer.</summary>
    public abstract Connection Accept(Socket socket);

    /// <summary>Connects a new (unconnected) server socket to <paramref name="remote"/>.</summary>
    public abstract ValueTask<Connection> ConnectAsync(Socket socket, EndPoint remote, CancellationToken ct);

    public virtual void Dispose()
    {
    }

    /// <param name="idleSpinMicros">idle_spin_us: how long a loop may poll before it blocks (<see cref="IdleSpin"/>).</param>
    public static ConnectionTransport Create(TransportKind kind, int ioThreads, Action<Exception> onLoopError, int idleSpinMicros = 0) =>
        Create(kind, ioThreads, onLoopError, (threads, onError, reason) => new IoUringTransport(threads, onError, reason, idleSpinMicros), idleSpinMicros);

    /// <param name="startIoUring">Starts the io_uring transport; tests replace it to play a kernel that refuses io_uring.</param>
    internal static ConnectionTransport Create(TransportKind kind, int ioThreads, Action<Exception> onLoopError, Func<int, Action<Exception>, string, ConnectionTransport> startIoUring, int idleSpinMicros = 0)
    {
        if (kind == TransportKind.Sockets)
        {
            return new SocketTransport("transport = sockets");
        }

        if (!OperatingSystem.IsLinux())
        {
            return kind == TransportKind.Epoll
                ? throw new TransportUnavailableException("transport = epoll needs Linux")
                : new SocketTransport(kind == TransportKind.IoUring ? "transport = io_uring, which needs Linux" : "not Linux");
        }

        int threads = ioThreads > 0 ? ioThreads : Math.Max(1, Environment.ProcessorCount / 2);
        string epollReason = kind == TransportKind.Epoll ? "transport = epoll" : "Linux";
        if (kind == TransportKind.IoUring)
        {
            // Refused (an old kernel, a seccomp filter, kernel.io_uring_disabled, RLIMIT_MEMLOCK): the proxy still
            // starts, on epoll, and the startup line that names the transport says why it is not io_uring.
            try
            {
                return startIoUring(threads, onLoopError, "transport = io_uring");
            }
            catch (Exception ex) when (ex is IoUringUnavailableException or DllNotFoundException or EntryPointNotFoundException)
            {
                epollReason = $"transport = io_uring was refused ({ex.Message})";
            }
        }

        try
        {
            return new EpollTransport(threads, onLoopError, epollReason, idleSpinMicros);
        }
        catch (Exception ex) when (kind != TransportKind.Epoll && ex is SocketException or DllNotFoundException or EntryPointNotFoundException or MarshalDirectiveException)
        {
            return new SocketTransport($"{epollReason}; epoll failed to start: {ex.Message}");
        }
    }
}

internal sealed class SocketTransport : ConnectionTransport
{
    public SocketTransport(string reason) => Reason = reason;

    public override string Name => "sockets";

    public override Connection Accept(Socket socket) => new SocketConnection(socket, idleMostly: true);

    public override async ValueTask<Connection> ConnectAsync(Socket socket, EndPoint remote, CancellationToken ct)
    {
        await socket.ConnectAsync(remote, ct).ConfigureAwait(false);
        return new SocketConnection(socket, idleMostly: false);
    }
}

/// <summary>N epoll loops; connections are spread over them round-robin.</summary>
internal sealed class EpollTransport : ConnectionTransport
{
    private readonly EpollLoop[] _loops;
    private uint _next;

    public EpollTransport(int threads, Action<Exception> onLoopError, string reason, int idleSpinMicros = 0)
    {
        Reason = reason;
        _loops = new EpollLoop[threads];
        try
        {
            for (int i = 0; i < threads; i++)
            {
                _loops[i] = new EpollLoop(i, onLoopError, idleSpinMicros);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public override string Name => $"epoll ({_loops.Length} thread{(_loops.Length == 1 ? "" : "s")})";

    public override int LoopCount => _loops.Length;

    private EpollLoop NextLoop() => _loops[(int)(Interlocked.Increment(ref _next) % (uint)_loops.Length)];

    public override Connection Accept(Socket socket) => EpollConnection.Wrap(socket, NextLoop(), idleMostly: true);

    public override ValueTask<Connection> ConnectAsync(Socket socket, EndPoint remote, CancellationToken ct) =>
        EpollConnection.ConnectAsync(socket, remote, NextLoop(), ct);

    public override void Dispose()
    {
        foreach (var loop in _loops)
        {
            loop?.Dispose();
        }
    }
}

/// <summary>N io_uring loops; connections are spread over them round-robin.</summary>
internal sealed class IoUringTransport : ConnectionTransport
{
    private readonly IoUringLoop[] _loops;
    private uint _next;

    public override int DescriptorsPerConnection => 2;

    public IoUringTransport(int threads, Action<Exception> onLoopError, string reason, int idleSpinMicros = 0)
    {
        Reason = reason;
        _loops = new IoUringLoop[threads];
        try
        {
            for (int i = 0; i < threads; i++)
            {
                _loops[i] = new IoUringLoop(i, onLoopError, idleSpinMicros);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public override string Name => $"io_uring ({_loops.Length} thread{(_loops.Length == 1 ? "" : "s")})";

    public override int LoopCount => _loops.Length;

    private IoUringLoop NextLoop() => _loops[(int)(Interlocked.Increment(ref _next) % (uint)_loops.Length)];

    public override Connection Accept(Socket socket) => IoUringConnection.Wrap(socket, NextLoop(), idleMostly: true);

    public override ValueTask<Connection> ConnectAsync(Socket socket, EndPoint remote, CancellationToken ct) =>
        IoUringConnection.ConnectAsync(socket, remote, NextLoop(), ct);

    public override void Dispose()
    {
        foreach (var loop in _loops)
        {
            loop?.Dispose();
        }
    }
}

/// <summary>The transport named in the configuration cannot run on this machine; the message says why.</summary>
public sealed class TransportUnavailableException : Exception
{
    public TransportUnavailableException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
