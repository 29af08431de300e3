using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace FastPool.Proxy.Transport;

/// <summary>
/// The portable transport's connection, on .NET's own socket engine. Input is a PipeReader that reads
/// straight from the socket on the caller's ReadAsync (no separate receive loop, so no thread hop between
/// the socket and the parser) and, for clients, waits with a zero-byte read, so an idle client holds no
/// receive buffer.
/// </summary>
internal sealed class SocketConnection : Connection
{
    // 16 KiB segments: a pgbench result fits one segment, a big DataRow stream takes few sends.
    private const int SegmentSize = 16 * 1024;
    private const int MinimumReadSize = 4 * 1024;

    private readonly NetworkStream _stream;

    /// <param name="socket">A connected socket; the connection owns it.</param>
    /// <param name="idleMostly">True for client sockets, which mostly wait: they read with a zero-byte read first, so an
    /// idle client pins no buffer. Server sockets are busy while in use and skip that extra system call.</param>
    public SocketConnection(Socket socket, bool idleMostly)
        : base(socket)
    {
        _stream = new NetworkStream(socket, ownsSocket: false);
        Input = PipeReader.Create(_stream, new StreamPipeReaderOptions(
            pool: MemoryPool<byte>.Shared,
            bufferSize: SegmentSize,
            minimumReadSize: MinimumReadSize,
            leaveOpen: true,
            useZeroByteReads: idleMostly));
    }

    public override PipeReader Input { get; }

    public override ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        var pending = Socket.SendAsync(data, SocketFlags.None, ct);
        if (pending.IsCompletedSuccessfully)
        {
            _ = pending.Result;
            return default;
        }

        return AwaitSend(pending);

        static async ValueTask AwaitSend(ValueTask<int> pending) => await pending.ConfigureAwait(false);
    }

    protected override void OnDetaching()
    {
        // leaveOpen and ownsSocket: false, so neither closes the socket.
        Input.Complete();
        _stream.Dispose();
    }

    protected override ValueTask DisposeCoreAsync() => _stream.DisposeAsync();
}
