using System.Net;
using System.Net.Sockets;
using FastPool.Proxy.Transport;
using FastPool.Proxy.Transport.Epoll;

namespace FastPool.Proxy.Tests.Transport;

/// <summary>
/// The epoll loop holds a reference on each registered socket so that its own system calls need none; a connection
/// closed on any thread still gets its descriptor closed, and one closed while another thread sends is not freed
/// under that send.
/// </summary>
public sealed class EpollHandleLifetimeTests : IAsyncLifetime
{
    private EpollLoop _loop = null!;
    private Socket _listener = null!;

    public Task InitializeAsync()
    {
        _loop = new EpollLoop(0, _ => { });
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen();
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        _listener.Dispose();
        _loop.Dispose();
        return Task.CompletedTask;
    }

    private async Task<(EpollConnection Connection, Socket Peer, string Inode, int Fd)> ConnectAsync()
    {
        var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await peer.ConnectAsync(_listener.LocalEndPoint!);
        var accepted = await _listener.AcceptAsync();
        int fd = (int)accepted.SafeHandle.DangerousGetHandle();
        string inode = SocketInode(fd)!;
        return (EpollConnection.Wrap(accepted, _loop, idleMostly: false), peer, inode, fd);
    }

    private static string? SocketInode(int fd)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{fd}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The descriptor no longer names the socket (closed; its number may already belong to another file).</summary>
    private static async Task AssertClosedAsync(int fd, string inode)
    {
        for (int i = 0; i < 200 && SocketInode(fd) == inode; i++)
        {
            await Task.Delay(25);
        }

        Assert.NotEqual(inode, SocketInode(fd));
    }

    [Fact(Timeout = 30_000)]
    public async Task A_connection_aborted_off_the_loop_thread_has_its_descriptor_closed()
    {
        var (connection, peer, inode, fd) = await ConnectAsync();
        using (peer)
        {
            await Task.Run(connection.Abort);
            await AssertClosedAsync(fd, inode);

            // The peer sees the end of the stream.
            var buffer = new byte[16];
            Assert.Equal(0, await peer.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(10)));
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task A_connection_aborted_on_the_loop_thread_has_its_descriptor_closed()
    {
        var (connection, peer, inode, fd) = await ConnectAsync();
        using (peer)
        {
            // A read parked before the bytes come is completed on the loop thread, and a synchronous continuation
            // aborts the connection right there.
            var read = connection.Input.ReadAsync();
            Assert.False(read.IsCompleted, "nothing was sent yet");
            string? abortedOn = null;
            var aborted = read.AsTask().ContinueWith(
                t =>
                {
                    abortedOn = Thread.CurrentThread.Name;
                    connection.Input.AdvanceTo(t.Result.Buffer.End);
                    connection.Abort();
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
            await peer.SendAsync("x"u8.ToArray());
            await aborted.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.StartsWith("fastpool-io-", abortedOn);
            await AssertClosedAsync(fd, inode);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task Sends_from_other_threads_keep_working_while_the_loop_holds_the_socket_and_fail_cleanly_after_an_abort()
    {
        var (connection, peer, inode, fd) = await ConnectAsync();
        using (peer)
        {
            await Task.Run(async () => await connection.SendAsync("ping"u8.ToArray()));
            var buffer = new byte[16];
            int n = await peer.ReceiveAsync(buffer);
            Assert.Equal("ping", System.Text.Encoding.ASCII.GetString(buffer, 0, n));

            connection.Abort();
            await Assert.ThrowsAsync<SocketException>(async () => await Task.Run(async () => await connection.SendAsync("late"u8.ToArray())));
            await AssertClosedAsync(fd, inode);
        }
    }
}
