using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using Npgsql;

namespace FastPool.IntegrationTests.Resilience;

/// <summary>A database entry whose server cannot be reached: the client gets a prompt 08001, other databases keep working.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ServerUnreachableTests
{
    private readonly PostgresFixture _fixture;

    public ServerUnreachableTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task ClosedPort_ClientGetsConnectionError_Quickly()
    {
        int closedPort = ProxyChecks.FreePort();
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with
        {
            Databases = [new DatabaseConfig { Name = "deaddb", Nodes = [new NodeEndpoint("127.0.0.1", closedPort)] }],
        });

        var sw = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<PostgresException>(() => proxy.OpenAsync("deaddb"));
        sw.Stop();

        Assert.Contains(ex.SqlState, new[] { "08001", "08006" });
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"error took {sw.Elapsed}");

        // A second attempt (now inside server_login_retry) fails the same way, just as promptly.
        sw.Restart();
        var again = await Assert.ThrowsAsync<PostgresException>(() => proxy.OpenAsync("deaddb"));
        Assert.Contains(again.SqlState, new[] { "08001", "08006" });
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"second error took {sw.Elapsed}");

        // The proxy itself is fine: the fallback database still works.
        await ProxyChecks.AssertServesAsync(proxy);
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task SilentServer_ClientGets08001_AfterServerConnectTimeout_WhileOtherDatabasesWork()
    {
        // Accepts TCP and then never says a word, like a hung host or a black-holing middlebox.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        int silentPort = ((IPEndPoint)silent.LocalEndpoint).Port;
        var accepted = new ConcurrentBag<Socket>();
        using var stopAccepting = new CancellationTokenSource();
        var acceptLoop = Task.Run(async () =>
        {
            while (!stopAccepting.IsCancellationRequested)
            {
                try
                {
                    accepted.Add(await silent.AcceptSocketAsync(stopAccepting.Token));
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (SocketException)
                {
                    return;
                }
            }
        });

        try
        {
            await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with
            {
                ServerConnectTimeout = TimeSpan.FromSeconds(1),
                Databases = [new DatabaseConfig { Name = "silentdb", Nodes = [new NodeEndpoint("127.0.0.1", silentPort)] }],
            });

            var sw = Stopwatch.StartNew();
            var hanging = proxy.OpenAsync("silentdb");

            // Meanwhile, other databases are served normally.
            await ProxyChecks.AssertServesAsync(proxy);

            var ex = await Assert.ThrowsAsync<PostgresException>(() => hanging.WaitAsync(TimeSpan.FromSeconds(20)));
            sw.Stop();
            Assert.Equal("08001", ex.SqlState);
            Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.8), $"error came before server_connect_timeout: {sw.Elapsed}");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(6), $"error took {sw.Elapsed} with server_connect_timeout = 1 s");
            Assert.NotEmpty(accepted);

            await ProxyChecks.AssertServesAsync(proxy);
            ProxyChecks.AssertNoUnexpectedErrors(proxy);
        }
        finally
        {
            await stopAccepting.CancelAsync();
            silent.Stop();
            await acceptLoop;
            foreach (var socket in accepted)
            {
                socket.Dispose();
            }
        }
    }
}
