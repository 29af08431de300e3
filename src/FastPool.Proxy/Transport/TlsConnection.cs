using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace FastPool.Proxy.Transport;

/// <summary>
/// A connection encrypted with TLS, on either side: an SslStream over a NetworkStream over the socket, input a
/// PipeReader over the SslStream, sends written through it. Both transports hand their socket over to it
/// (<see cref="Connection.Detach"/>) once the SSLRequest exchange said 'S' (PostgreSQL docs 55.2.10
/// "SSL Session Encryption"); the epoll transport cannot carry TLS, since it reads the raw descriptor.
/// </summary>
internal sealed class TlsConnection : Connection
{
    private const int SegmentSize = 16 * 1024;
    private const int MinimumReadSize = 4 * 1024;

    private readonly SslStream _ssl;

    private TlsConnection(Socket socket, SslStream ssl, bool idleMostly)
        : base(socket)
    {
        _ssl = ssl;

        // Zero-byte reads let SslStream release its buffer while an idle client waits.
        Input = PipeReader.Create(ssl, new StreamPipeReaderOptions(
            pool: MemoryPool<byte>.Shared,
            bufferSize: SegmentSize,
            minimumReadSize: MinimumReadSize,
            leaveOpen: true,
            useZeroByteReads: idleMostly));
    }

    public override PipeReader Input { get; }

    /// <summary>The client's certificate (client side) or the server's (server side), if one was presented.</summary>
    public X509Certificate2? RemoteCertificate => _ssl.RemoteCertificate as X509Certificate2;

    /// <summary>The negotiated protocol and cipher, for log lines.</summary>
    public string Description => TlsMaterial.Describe(_ssl);

    public SslApplicationProtocol ApplicationProtocol => _ssl.NegotiatedApplicationProtocol;

    /// <summary>
    /// Runs the server side of a handshake on a client socket. <paramref name="received"/> is what was already read
    /// from the socket and belongs to the handshake: the ClientHello of a directly negotiated connection.
    /// </summary>
    public static async Task<TlsConnection> AcceptAsync(Socket socket, SslServerAuthenticationOptions options, ReadOnlyMemory<byte> received, CancellationToken ct)
    {
        Stream inner = new NetworkStream(socket, ownsSocket: false);
        if (!received.IsEmpty)
        {
            inner = new ReplayStream(received, inner);
        }

        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsServerAsync(options, ct).ConfigureAwait(false);
            return new TlsConnection(socket, ssl, idleMostly: true);
        }
        catch
        {
            // The socket was handed to us detached: nobody else will close it.
            await ssl.DisposeAsync().ConfigureAwait(false);
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Runs the client side of a handshake on a server socket.</summary>
    public static async Task<TlsConnection> ConnectAsync(Socket socket, SslClientAuthenticationOptions options, CancellationToken ct)
    {
        var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsClientAsync(options, ct).ConfigureAwait(false);
            return new TlsConnection(socket, ssl, idleMostly: false);
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            socket.Dispose();
            throw;
        }
    }

    public override ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default) => _ssl.WriteAsync(data, ct);

    protected override void OnDetaching() => throw new InvalidOperationException("a TLS connection cannot hand its socket over");

    protected override ValueTask DisposeCoreAsync() => _ssl.DisposeAsync();

    /// <summary>Serves bytes already taken off the socket before reading on from it.</summary>
    private sealed class ReplayStream(ReadOnlyMemory<byte> replay, Stream inner) : Stream
    {
        private ReadOnlyMemory<byte> _replay = replay;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (TakeReplay(buffer) is int n)
            {
                return n;
            }

            return inner.Read(buffer);
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            TakeReplay(buffer.Span) is int n ? new ValueTask<int>(n) : inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        private int? TakeReplay(Span<byte> buffer)
        {
            if (_replay.IsEmpty || buffer.IsEmpty)
            {
                // A zero-byte read with replay bytes left completes at once: there is data.
                return _replay.IsEmpty ? null : 0;
            }

            int n = Math.Min(buffer.Length, _replay.Length);
            _replay.Span[..n].CopyTo(buffer);
            _replay = _replay[n..];
            return n;
        }
    }
}
