using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace FastPool.Proxy.Transport;

/// <summary>
/// One socket, client or server side. Input is a PipeReader that reads straight from the socket on the
/// caller's ReadAsync (no separate receive loop, so no thread hop between the socket and the parser) and
/// waits with a zero-byte read, so an idle connection holds no receive buffer. Output is a direct send of
/// the caller's buffers: awaiting the send is the backpressure, and nothing is copied into an output pipe.
/// Exactly one reader and one sender at a time; the session guarantees that.
/// </summary>
internal sealed class Connection : IAsyncDisposable
{
    // 16 KiB segments: a pgbench result fits one segment, a big DataRow stream takes few sends.
    private const int SegmentSize = 16 * 1024;
    private const int MinimumReadSize = 4 * 1024;

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private int _closed;

    /// <param name="socket">A connected socket; the connection owns it.</param>
    /// <param name="idleMostly">True for client sockets, which mostly wait: they read with a zero-byte read first, so an
    /// idle client pins no buffer. Server sockets are busy while in use and skip that extra system call.</param>
    public Connection(Socket socket, bool idleMostly)
    {
        _socket = socket;
        if (socket.AddressFamily != AddressFamily.Unix)
        {
            socket.NoDelay = true;
        }

        _stream = new NetworkStream(socket, ownsSocket: false);
        Input = PipeReader.Create(_stream, new StreamPipeReaderOptions(
            pool: MemoryPool<byte>.Shared,
            bufferSize: SegmentSize,
            minimumReadSize: MinimumReadSize,
            leaveOpen: true,
            useZeroByteReads: idleMostly));
        RemoteEndPoint = SafeRemote(socket);
    }

    public PipeReader Input { get; }

    public string RemoteEndPoint { get; }

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    public Socket Socket => _socket;

    /// <summary>
    /// True when the peer closed the socket or sent something while nobody was reading: for an idle pooled
    /// server, either means it must not be handed out (PostgreSQL sends nothing to an idle session except a
    /// FATAL before it exits, e.g. after pg_terminate_backend or a shutdown).
    /// </summary>
    public bool HasUnexpectedInput()
    {
        try
        {
            return IsClosed || _socket.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default) =>
        _socket.SendAsync(data, SocketFlags.None, ct);

    /// <summary>Sends a (possibly multi-segment) slice of a read buffer without copying it.</summary>
    public ValueTask SendAsync(in ReadOnlySequence<byte> data, CancellationToken ct = default)
    {
        if (data.IsSingleSegment)
        {
            var pending = _socket.SendAsync(data.First, SocketFlags.None, ct);
            if (pending.IsCompletedSuccessfully)
            {
                _ = pending.Result;
                return default;
            }

            return AwaitSend(pending);
        }

        return SendSegmentsAsync(data, ct);

        static async ValueTask AwaitSend(ValueTask<int> pending) => await pending.ConfigureAwait(false);
    }

    private async ValueTask SendSegmentsAsync(ReadOnlySequence<byte> data, CancellationToken ct)
    {
        foreach (var segment in data)
        {
            await _socket.SendAsync(segment, SocketFlags.None, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Ends the connection: shuts the socket so a pending read on either side completes, then frees it.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        _socket.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        Abort();
        await Input.CompleteAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }

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
        catch (SocketException)
        {
            return "?";
        }
    }
}
