using System.Net;
using System.Net.Sockets;
using System.Text;
using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Metrics;

/// <summary>
/// The HTTP/1.1 endpoint of metrics_listen: GET (or HEAD) of /metrics, /healthz and / (the status page).
/// Deliberately tiny: one request per connection (answered with Connection: close), a bounded request head,
/// a read timeout, and a cap on connections at once; scrapers and load balancers need nothing more, and it
/// keeps ASP.NET out of the native executable.
/// </summary>
internal sealed class MetricsServer : IAsyncDisposable
{
    private const int MaxRequestHead = 8192;
    private const int MaxConnections = 64;
    private static readonly TimeSpan s_readTimeout = TimeSpan.FromSeconds(10);

    private readonly ProxyRuntime _runtime;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;
    private int _connections;

    private MetricsServer(ProxyRuntime runtime, Socket listener)
    {
        _runtime = runtime;
        _listener = listener;
        EndPoint = (IPEndPoint)listener.LocalEndPoint!;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The address bound (kept: it stays readable after the listener closed).</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>Binds <paramref name="at"/> (port 0 picks a free one) and starts answering.</summary>
    public static MetricsServer Start(ProxyRuntime runtime, ListenEndpoint at)
    {
        var address = at.Host == "*" ? IPAddress.Any
            : IPAddress.TryParse(at.Host, out var ip) ? ip
            : Dns.GetHostAddresses(at.Host).First();
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // As the proxy's own listeners: a port shared with another process only with so_reuseport.
            Transport.ReusePort.EnableReuseAddress(socket);
            if (runtime.Config.SoReuseport)
            {
                Transport.ReusePort.Enable(socket);
            }

            socket.Bind(new IPEndPoint(address, at.Port));
            socket.Listen(64);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new MetricsServer(runtime, socket);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50).ConfigureAwait(false);
                continue;
            }

            if (Interlocked.Increment(ref _connections) > MaxConnections)
            {
                // Metrics must never compete with the proxy for file descriptors or CPU.
                Interlocked.Decrement(ref _connections);
                client.Dispose();
                continue;
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            timeout.CancelAfter(s_readTimeout);
            var head = await ReadHeadAsync(client, timeout.Token).ConfigureAwait(false);
            var response = head is null ? Response(400, "text/plain", "bad request\n", head: false) : Answer(head);
            await client.SendAsync(response, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // A slow or vanished scraper: nothing to tell anyone.
        }
        catch (Exception ex)
        {
            Log.Unexpected(_runtime.Logger, 0, "metrics: " + ex.Message, ex);
        }
        finally
        {
            client.Dispose();
            Interlocked.Decrement(ref _connections);
        }
    }

    /// <summary>The request line and headers (up to the blank line), or null when they are too long or cut off.</summary>
    private static async Task<string?> ReadHeadAsync(Socket client, CancellationToken ct)
    {
        var buffer = new byte[MaxRequestHead];
        int length = 0;
        while (length < buffer.Length)
        {
            int read = await client.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, ct).ConfigureAwait(false);
            if (read == 0)
            {
                return null;
            }

            length += read;
            int end = buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                return Encoding.ASCII.GetString(buffer, 0, end);
            }
        }

        return null;
    }

    private byte[] Answer(string head)
    {
        int lineEnd = head.IndexOf("\r\n", StringComparison.Ordinal);
        var parts = (lineEnd < 0 ? head : head[..lineEnd]).Split(' ');
        if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            return Response(400, "text/plain", "bad request\n", head: false);
        }

        bool headOnly = parts[0] == "HEAD";
        if (parts[0] != "GET" && !headOnly)
        {
            return Response(405, "text/plain", "only GET and HEAD\n", headOnly, "Allow: GET, HEAD\r\n");
        }

        var target = parts[1];
        int query = target.IndexOf('?', StringComparison.Ordinal);
        var path = query < 0 ? target : target[..query];
        switch (path)
        {
            case "/metrics":
                return Response(200, PrometheusWriter.ContentType, MetricsReport.Render(_runtime), headOnly);
            case "/healthz":
                // Load balancers take any non-2xx as "send no new clients here".
                var reason = _runtime.NotAcceptingReason;
                return reason is null ? Response(200, "text/plain", "ok\n", headOnly) : Response(503, "text/plain", reason + "\n", headOnly);
            case "/":
                return Response(200, StatusPage.ContentType, StatusPage.Render(_runtime), headOnly);
            default:
                return Response(404, "text/plain", "not found; try /, /metrics or /healthz\n", headOnly);
        }
    }

    private static byte[] Response(int status, string contentType, string body, bool head, string extraHeaders = "")
    {
        var content = Encoding.UTF8.GetBytes(body);
        var reason = status switch
        {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Service Unavailable",
        };
        var header = Encoding.ASCII.GetBytes(
            $"HTTP/1.1 {status} {reason}\r\nContent-Type: {contentType}\r\nContent-Length: {content.Length}\r\n" +
            $"Cache-Control: no-store\r\nConnection: close\r\n{extraHeaders}\r\n");
        return head ? header : [.. header, .. content];
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        _stopping.Dispose();
    }
}
