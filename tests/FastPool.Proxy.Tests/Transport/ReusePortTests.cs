using System.Net;
using System.Net.Sockets;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Tests.Transport;

/// <summary>The kernel side of a rolling restart (Linux): two listeners on one port, and the hand-over to the newer one.</summary>
public class ReusePortTests
{
    [Fact]
    public async Task Both_listeners_get_connections_until_the_older_one_steers_them_all_to_the_newer()
    {
        using var older = Listen(0);
        int port = ((IPEndPoint)older.LocalEndPoint!).Port;
        using var newer = Listen(port);

        // Without steering the kernel spreads connections by their addresses: both get some.
        var spread = await ConnectAndCountAsync(port, 40, older, newer);
        Assert.True(spread.Older > 0 && spread.Newer > 0, $"no spread: older {spread.Older}, newer {spread.Newer}");

        Assert.True(ReusePort.SteerToSuccessor(older));
        var steered = await ConnectAndCountAsync(port, 40, older, newer);
        Assert.Equal((0, 40), steered);
    }

    [Fact]
    public async Task Steering_with_no_successor_leaves_the_port_working()
    {
        using var alone = Listen(0);
        int port = ((IPEndPoint)alone.LocalEndPoint!).Port;
        Assert.True(ReusePort.SteerToSuccessor(alone));
        Assert.Equal((10, 0), await ConnectAndCountAsync(port, 10, alone, null));
    }

    private static Socket Listen(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        ReusePort.Enable(socket);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
        socket.Listen(64);
        return socket;
    }

    /// <summary>Opens <paramref name="count"/> connections one by one and says which listener accepted each.</summary>
    private static async Task<(int Older, int Newer)> ConnectAndCountAsync(int port, int count, Socket older, Socket? newer)
    {
        int o = 0, n = 0;
        for (int i = 0; i < count; i++)
        {
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            if (newer is null)
            {
                using var only = await older.AcceptAsync(timeout.Token);
                o++;
                continue;
            }

            var fromOlder = older.AcceptAsync(timeout.Token).AsTask();
            var fromNewer = newer.AcceptAsync(timeout.Token).AsTask();
            var first = await Task.WhenAny(fromOlder, fromNewer);
            using var accepted = await first;
            if (first == fromOlder)
            {
                o++;
            }
            else
            {
                n++;
            }

            // The other accept is still pending: cancel it so it cannot take the next connection.
            await timeout.CancelAsync();
            try
            {
                using var extra = await (first == fromOlder ? fromNewer : fromOlder);
                Assert.Fail("one connection was accepted twice");
            }
            catch (OperationCanceledException)
            {
            }
        }

        return (o, n);
    }
}
