using System.Collections.Concurrent;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Protocol;

/// <summary>LISTEN/NOTIFY in session mode: asynchronous NotificationResponse messages reach the listening client.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ListenNotifyTests
{
    private static readonly TimeSpan _wait = TimeSpan.FromSeconds(10);
    private readonly PostgresFixture _fixture;

    public ListenNotifyTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Listener_ThroughProxy_ReceivesNotify_FromClientThroughProxy()
    {
        var channel = UniqueName("chan");
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var listener = await proxy.OpenAsync();
        var received = new ConcurrentQueue<NpgsqlNotificationEventArgs>();
        listener.Notification += (_, e) => received.Enqueue(e);
        await ExecAsync(listener, $"listen {channel}");

        await using (var notifier = await proxy.OpenAsync())
        {
            await ExecAsync(notifier, $"notify {channel}, 'hello through the proxy'");
            await using var cmd = new NpgsqlCommand("select pg_notify($1, $2)", notifier);
            cmd.Parameters.AddWithValue(channel);
            cmd.Parameters.AddWithValue("second ✓");
            await cmd.ExecuteNonQueryAsync();
        }

        await WaitForAsync(listener, received, 2);
        var all = received.ToArray();
        Assert.All(all, n => Assert.Equal(channel, n.Channel));
        Assert.Equal(["hello through the proxy", "second ✓"], all.Select(n => n.Payload));

        // Still an ordinary connection afterwards.
        Assert.Equal(1, await ScalarAsync(listener, "select 1"));
    }

    [Fact]
    public async Task Listener_ThroughProxy_ReceivesNotify_FromDirectClient_AndOnlyAfterCommit()
    {
        var channel = UniqueName("chan");
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var listener = await proxy.OpenAsync();
        var received = new ConcurrentQueue<NpgsqlNotificationEventArgs>();
        listener.Notification += (_, e) => received.Enqueue(e);
        await ExecAsync(listener, $"listen {channel}");

        await using var direct = new NpgsqlConnection(_fixture.SuperuserConnectionString());
        await direct.OpenAsync();
        await using (var tx = await direct.BeginTransactionAsync())
        {
            await ExecAsync(direct, $"notify {channel}, 'in a transaction'");

            // Nothing is delivered before the commit.
            Assert.False(await listener.WaitAsync(TimeSpan.FromMilliseconds(300)));
            Assert.Empty(received);
            await tx.CommitAsync();
        }

        await WaitForAsync(listener, received, 1);
        var n = Assert.Single(received);
        Assert.Equal(channel, n.Channel);
        Assert.Equal("in a transaction", n.Payload);

        // The listener's LISTEN is a fact on the server it holds.
        Assert.Equal(channel, await ScalarAsync(listener, "select string_agg(c, ',') from pg_listening_channels() c"));
    }

    [Fact]
    public async Task Notification_ArrivesWhileListenerIsIdle_WithoutItSendingAnything()
    {
        var channel = UniqueName("chan");
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var listener = await proxy.OpenAsync();
        var received = new ConcurrentQueue<NpgsqlNotificationEventArgs>();
        listener.Notification += (_, e) => received.Enqueue(e);
        await ExecAsync(listener, $"listen {channel}");

        // The listener is blocked in WaitAsync (reading) before the notify is even sent.
        var waiting = listener.WaitAsync(_wait);
        await Task.Delay(200);
        await using (var notifier = await proxy.OpenAsync())
        {
            await ExecAsync(notifier, $"notify {channel}, 'pushed'");
        }

        Assert.True(await waiting, "no notification within " + _wait);
        Assert.Equal("pushed", Assert.Single(received).Payload);
    }

    private static async Task WaitForAsync(NpgsqlConnection listener, ConcurrentQueue<NpgsqlNotificationEventArgs> received, int count)
    {
        var deadline = DateTime.UtcNow + _wait;
        while (received.Count < count)
        {
            var left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, $"only {received.Count} of {count} notifications arrived within {_wait}");
            await listener.WaitAsync(left);
        }
    }
}
