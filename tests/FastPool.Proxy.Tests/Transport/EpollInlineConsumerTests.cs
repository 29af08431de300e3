using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using FastPool.Proxy.Transport;
using FastPool.Proxy.Transport.Epoll;

namespace FastPool.Proxy.Tests.Transport;

/// <summary>
/// What arrives while a read is parked goes to the connection's inline consumer on the loop thread; the read
/// wakes only when the consumer declines, or when the stream ends.
/// </summary>
public sealed class EpollInlineConsumerTests : IAsyncLifetime
{
    private readonly List<Exception> _loopErrors = [];
    private EpollLoop _loop = null!;
    private Socket _listener = null!;
    private Socket _peer = null!;
    private EpollConnection _connection = null!;

    public async Task InitializeAsync()
    {
        _loop = new EpollLoop(0, ex => { lock (_loopErrors) { _loopErrors.Add(ex); } });
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen();
        _peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await _peer.ConnectAsync(_listener.LocalEndPoint!);
        _connection = EpollConnection.Wrap(await _listener.AcceptAsync(), _loop, idleMostly: true);
    }

    public async Task DisposeAsync()
    {
        await _connection.DisposeAsync();
        _peer.Dispose();
        _listener.Dispose();
        _loop.Dispose();
        Assert.Empty(_loopErrors);
    }

    [Fact]
    public async Task Bytes_taken_inline_never_wake_the_parked_read_and_a_declined_batch_does()
    {
        var consumer = new RecordingConsumer();
        Assert.True(_connection.TrySetInlineConsumer(consumer));
        var read = _connection.Input.ReadAsync().AsTask();

        await _peer.SendAsync("hello"u8.ToArray());
        await consumer.WaitForAsync(5);
        await _peer.SendAsync(" world"u8.ToArray());
        await consumer.WaitForAsync(11);

        Assert.Equal("hello world", consumer.Text);
        Assert.Equal("fastpool-io-0", consumer.ThreadName);
        await Task.Delay(100);
        Assert.False(read.IsCompleted, "the parked read woke although the consumer took everything");

        // Declined: the parked read completes with exactly the bytes the consumer did not take.
        consumer.Decline = true;
        await _peer.SendAsync("rest"u8.ToArray());
        var result = await read.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("rest", System.Text.Encoding.ASCII.GetString(result.Buffer.ToArray()));
        Assert.False(result.IsCompleted);
        _connection.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public async Task A_hang_up_right_after_the_last_bytes_still_ends_the_parked_read()
    {
        var consumer = new RecordingConsumer();
        _connection.TrySetInlineConsumer(consumer);
        var read = _connection.Input.ReadAsync().AsTask();

        // Data and FIN may come in one edge: the consumer takes the data, and the end of the stream must still reach
        // the read, as no further edge will announce it.
        await _peer.SendAsync("last words"u8.ToArray());
        _peer.Shutdown(SocketShutdown.Send);

        var result = await read.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(result.IsCompleted);
        Assert.Equal("last words", consumer.Text);
        Assert.True(result.Buffer.IsEmpty);
    }

    [Fact]
    public async Task Without_a_consumer_the_read_completes_as_before()
    {
        var consumer = new RecordingConsumer();
        _connection.TrySetInlineConsumer(consumer);
        _connection.TrySetInlineConsumer(null);
        var read = _connection.Input.ReadAsync().AsTask();

        await _peer.SendAsync("direct"u8.ToArray());

        var result = await read.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("direct", System.Text.Encoding.ASCII.GetString(result.Buffer.ToArray()));
        Assert.Equal(string.Empty, consumer.Text);
        _connection.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public async Task A_consumer_that_throws_fails_the_parked_read_and_the_loop_goes_on()
    {
        var consumer = new RecordingConsumer { Throw = true };
        _connection.TrySetInlineConsumer(consumer);
        var read = _connection.Input.ReadAsync().AsTask();

        await _peer.SendAsync("boom"u8.ToArray());

        // The pump sees its read fail (and ends its session) instead of waiting forever on a read left busy.
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => read.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("consumer bug", error.Message);
        lock (_loopErrors)
        {
            Assert.Single(_loopErrors);
            _loopErrors.Clear();
        }

        // The loop still serves its other connections.
        using var otherPeer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await otherPeer.ConnectAsync(_listener.LocalEndPoint!);
        await using var other = EpollConnection.Wrap(await _listener.AcceptAsync(), _loop, idleMostly: true);
        var otherRead = other.Input.ReadAsync().AsTask();
        await otherPeer.SendAsync("still here"u8.ToArray());
        var result = await otherRead.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("still here", System.Text.Encoding.ASCII.GetString(result.Buffer.ToArray()));
        other.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public async Task A_reader_completed_while_the_consumer_runs_ends_the_parked_read()
    {
        // Complete() from another thread can land while the loop holds the read; here the consumer itself calls it at
        // that moment, which is the same interleaving made certain.
        var consumer = new RecordingConsumer { CompleteReader = true };
        _connection.TrySetInlineConsumer(consumer);
        var read = _connection.Input.ReadAsync().AsTask();

        await _peer.SendAsync("bye"u8.ToArray());

        var result = await read.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(result.IsCompleted);
        Assert.Equal("bye", consumer.Text);
    }

    /// <summary>Takes everything it is given (or nothing, once told to decline), noting it.</summary>
    private sealed class RecordingConsumer : IInlineConsumer
    {
        private readonly System.Text.StringBuilder _taken = new();

        public volatile bool Decline;

        public bool Throw;

        public bool CompleteReader;

        public string? ThreadName { get; private set; }

        public string Text
        {
            get
            {
                lock (_taken)
                {
                    return _taken.ToString();
                }
            }
        }

        public bool TryConsume(PipeReader reader, in ReadOnlySequence<byte> buffer)
        {
            if (Decline)
            {
                return false;
            }

            if (Throw)
            {
                throw new InvalidOperationException("consumer bug");
            }

            ThreadName = Thread.CurrentThread.Name;
            lock (_taken)
            {
                _taken.Append(System.Text.Encoding.ASCII.GetString(buffer.ToArray()));
            }

            reader.AdvanceTo(buffer.End);
            if (CompleteReader)
            {
                reader.Complete();
            }

            return true;
        }

        public async Task WaitForAsync(int length)
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (Text.Length < length)
            {
                Assert.True(DateTime.UtcNow < deadline, $"the consumer got only \"{Text}\"");
                await Task.Delay(10);
            }
        }
    }
}
