using System.Net;
using System.Net.Sockets;
using FastPool.Proxy.Transport.IoUring;

namespace FastPool.Proxy.Tests.Transport;

/// <summary>Stopping an io_uring loop never unmaps its ring under the loop (that was an access violation, which kills the process).</summary>
public sealed class IoUringLoopTests
{
    [Fact]
    public async Task A_loop_disposed_by_a_receive_continuation_stops_cleanly()
    {
        // This machine's kernel allows io_uring (the integration suite runs on it).
        var errors = new List<Exception>();
        var loop = new IoUringLoop(0, ex => { lock (errors) { errors.Add(ex); } }, idleSpinMicros: 20);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await peer.ConnectAsync(listener.LocalEndPoint!);
        var connection = IoUringConnection.Wrap(await listener.AcceptAsync(), loop, idleMostly: false);

        // A read awaited on the loop thread resumes there, inside the dispatch of its completion, as a session's pump
        // does; here the continuation stops the loop (as a command that stops the proxy would): the ring must outlive
        // that dispatch.
        var done = new TaskCompletionSource<Thread>(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Post(_ => _ = ReadThenDisposeAsync(), null);
        await peer.SendAsync(new byte[] { 1, 2, 3 });

        var loopThread = await done.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("fastpool-uring-0", loopThread.Name);
        Assert.True(loopThread.Join(TimeSpan.FromSeconds(10)), "the loop thread did not stop");
        loop.Dispose();
        Assert.Empty(errors);

        async Task ReadThenDisposeAsync()
        {
            var result = await connection.Input.ReadAsync();
            connection.Input.AdvanceTo(result.Buffer.End);
            loop.Dispose();
            done.TrySetResult(Thread.CurrentThread);
        }
    }

    [Fact]
    public void A_loop_disposed_from_its_own_thread_or_another_stops()
    {
        foreach (bool fromLoop in new[] { true, false })
        {
            var loop = new IoUringLoop(0, _ => { }, idleSpinMicros: 20);
            Thread? loopThread = null;
            using var ran = new ManualResetEventSlim();
            loop.Post(_ =>
            {
                loopThread = Thread.CurrentThread;
                if (fromLoop)
                {
                    loop.Dispose();
                }

                ran.Set();
            }, null);
            Assert.True(ran.Wait(TimeSpan.FromSeconds(10)), "the posted action never ran");

            loop.Dispose();

            Assert.True(loopThread!.Join(TimeSpan.FromSeconds(10)), "the loop thread did not stop");
        }
    }
}
