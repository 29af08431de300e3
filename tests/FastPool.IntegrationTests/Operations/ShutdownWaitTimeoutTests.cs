using System.Diagnostics;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Operations;

/// <summary>A safe shutdown waits for clients, but only for shutdown_wait_timeout; who is left then gets 57P01.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ShutdownWaitTimeoutTests
{
    private const string Marker = "shutdown_wait_timeout test";

    private readonly PostgresFixture _fixture;

    public ShutdownWaitTimeoutTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Theory]
    [InlineData(PoolMode.Session)]
    [InlineData(PoolMode.Transaction)]
    public async Task ClientsStillConnectedAtTheTimeout_Get57P01(PoolMode mode)
    {
        await using var host = ProxyHost.Start(_fixture.Primary, c => c with { PoolMode = mode, ShutdownWaitTimeout = TimeSpan.FromSeconds(1) });
        await using var idle = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(idle, "select 1"));
        await using var busy = await host.OpenAsync();
        var longQuery = ScalarAsync<object>(busy, "select pg_sleep(60) /* " + Marker + " */");
        await Task.Delay(200);

        var sw = Stopwatch.StartNew();
        await host.Server.StopAsync(ShutdownMode.Safe).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.9), $"the shutdown did not wait for the clients ({sw.Elapsed})");

        // The client in the middle of a query is told at once; the idle one finds the error on its next use.
        var cut = await Assert.ThrowsAsync<PostgresException>(() => longQuery.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("57P01", cut.SqlState);
        var idleEx = await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync<int>(idle, "select 1"));
        Assert.Equal("57P01", (idleEx as PostgresException ?? idleEx.InnerException as PostgresException)?.SqlState);
        Assert.Contains(host.Logs, l => l.Contains("still connected after shutdown_wait_timeout", StringComparison.Ordinal));
        await EndLeftoverSleepAsync();
    }

    /// <summary>
    /// Clients that have not finished logging in when the wait ends are told 57P01 too: one that has not sent its
    /// startup packet, and one that was asked for its password and has not answered. The wait also covers them:
    /// with no session at all, the shutdown still waits for them until shutdown_wait_timeout.
    /// </summary>
    [Fact]
    public async Task ClientsStillLoggingInAtTheTimeout_Get57P01()
    {
        await using var host = ProxyHost.Start(_fixture.Primary, c => c with
        {
            AuthType = AuthType.Md5,
            AuthFileUsers = new Dictionary<string, string>(StringComparer.Ordinal) { ["postgres"] = "secret" },
            ShutdownWaitTimeout = TimeSpan.FromSeconds(1),
        });

        using var silent = await ConnectRawAsync(host.Port);
        using var asked = await ConnectRawAsync(host.Port);
        await SendStartupAsync(asked, "postgres", "postgres");
        var (code, body) = await ReadMessageAsync(asked);
        Assert.Equal('R', code);
        Assert.NotEqual(0, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(body));

        var stopping = host.Server.StopAsync(ShutdownMode.Safe);
        await Task.Delay(300);
        Assert.False(stopping.IsCompleted, "the shutdown did not wait for the clients logging in");
        await stopping.WaitAsync(TimeSpan.FromSeconds(30));

        foreach (var socket in new[] { silent, asked })
        {
            (code, body) = await ReadMessageAsync(socket).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal('E', code);
            Assert.Equal("57P01", ErrorField(body, 'C'));
            Assert.Equal("FATAL", ErrorField(body, 'S'));
        }
    }

    /// <summary>A client waiting for a server when the wait ends is told 57P01, not handed the server another client left.</summary>
    [Fact]
    public async Task ClientWaitingForAServerAtTheTimeout_Gets57P01()
    {
        await using var host = Admin.AdminSupport.StartProxy(_fixture.Primary, c => c with { DefaultPoolSize = 1, ShutdownWaitTimeout = TimeSpan.FromSeconds(1) });
        await using var holder = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(holder, "select 1"));
        await using var waiter = await host.OpenAsync();
        var waiting = ScalarAsync<int>(waiter, "select 2");
        await Admin.AdminSupport.WaitUntilAsync(async () =>
        {
            var pools = await Admin.AdminSupport.ShowAsync(host.Port, "SHOW POOLS");
            return pools.Int(pools.Single("database", "postgres"), "cl_waiting") == 1;
        }, "the second client waits for the only server");

        await host.Server.StopAsync(ShutdownMode.Safe).WaitAsync(TimeSpan.FromSeconds(30));
        var ex = await Assert.ThrowsAsync<PostgresException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("57P01", ex.SqlState);
        var holderEx = await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync<int>(holder, "select 1"));
        Assert.Equal("57P01", (holderEx as PostgresException ?? holderEx.InnerException as PostgresException)?.SqlState);
    }

    /// <summary>
    /// SHUTDOWN WAIT_FOR_SERVERS (SIGINT's mode, PgBouncer 1.23+) in transaction pooling: a transaction under way
    /// finishes, a client asking for a server for a new one is told 57P01 at once, and once no server is in use
    /// every client left is told 57P01 and FastPool stops, without waiting for the idle clients to leave.
    /// </summary>
    [Fact]
    public async Task WaitForServers_LetsTransactionsFinish_TurnsNewOnesAway()
    {
        await using var host = Admin.AdminSupport.StartProxy(_fixture.Primary, c => c with { PoolMode = PoolMode.Transaction });
        await using var inTransaction = await host.OpenAsync();
        await ExecAsync(inTransaction, "begin");
        Assert.Equal(1, await ScalarAsync<int>(inTransaction, "select 1"));
        await using var idle = await host.OpenAsync();
        Assert.Equal(2, await ScalarAsync<int>(idle, "select 2"));

        await Admin.AdminSupport.RunAsync(host.Port, "SHUTDOWN WAIT_FOR_SERVERS");
        Assert.Equal(ShutdownMode.WaitForServers, await host.Server.ShutdownRequested.WaitAsync(TimeSpan.FromSeconds(10)));
        var stopping = host.Server.StopAsync(ShutdownMode.WaitForServers);

        var turnedAway = await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync<int>(idle, "select 3").WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal("57P01", SqlStateOf(turnedAway));

        Assert.False(stopping.IsCompleted, "the shutdown did not wait for the transaction under way");
        Assert.Equal(4, await ScalarAsync<int>(inTransaction, "select 4"));
        await ExecAsync(inTransaction, "commit");
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));

        var closed = await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync<int>(inTransaction, "select 5"));
        Assert.Equal("57P01", SqlStateOf(closed));
    }

    private static string? SqlStateOf(NpgsqlException ex) => (ex as PostgresException ?? ex.InnerException as PostgresException)?.SqlState;

    private static async Task<System.Net.Sockets.Socket> ConnectRawAsync(int port)
    {
        var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", port);
        return socket;
    }

    /// <summary>A protocol 3.0 startup packet (55.7 "StartupMessage").</summary>
    private static async Task SendStartupAsync(System.Net.Sockets.Socket socket, string user, string database)
    {
        var body = new List<byte>();
        body.AddRange([0, 3, 0, 0]);
        foreach (var s in new[] { "user", user, "database", database })
        {
            body.AddRange(System.Text.Encoding.UTF8.GetBytes(s));
            body.Add(0);
        }

        body.Add(0);
        var packet = new byte[body.Count + 4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length);
        body.CopyTo(packet, 4);
        await socket.SendAsync(packet);
    }

    private static async Task<(char Code, byte[] Body)> ReadMessageAsync(System.Net.Sockets.Socket socket)
    {
        var header = new byte[5];
        await ReadExactlyAsync(socket, header);
        var body = new byte[System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1)) - 4];
        await ReadExactlyAsync(socket, body);
        return ((char)header[0], body);
    }

    private static async Task ReadExactlyAsync(System.Net.Sockets.Socket socket, byte[] buffer)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read));
            Assert.True(n > 0, "the connection closed before a whole message arrived");
            read += n;
        }
    }

    /// <summary>One field of an ErrorResponse body (55.8 "Error and Notice Message Fields").</summary>
    private static string? ErrorField(byte[] body, char type)
    {
        int pos = 0;
        while (pos < body.Length && body[pos] != 0)
        {
            char field = (char)body[pos++];
            int end = Array.IndexOf(body, (byte)0, pos);
            if (field == type)
            {
                return System.Text.Encoding.UTF8.GetString(body, pos, end - pos);
            }

            pos = end + 1;
        }

        return null;
    }

    /// <summary>
    /// PostgreSQL notices a closed client socket only when the query ends, so the cut pg_sleep would run on for a
    /// minute on the shared server, where other tests look for sleeping backends: end it now.
    /// </summary>
    private async Task EndLeftoverSleepAsync()
    {
        await using var admin = new NpgsqlConnection(_fixture.SuperuserConnectionString());
        await admin.OpenAsync();
        for (int i = 0; i < 100; i++)
        {
            await using var cmd = new NpgsqlCommand(
                $"select count(pg_terminate_backend(pid)) from pg_stat_activity where query like '%{Marker}%' and pid <> pg_backend_pid()", admin);
            if (Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture) == 0)
            {
                return;
            }

            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task ClientsThatLeaveBeforeTheTimeout_EndTheShutdownEarly()
    {
        await using var host = ProxyHost.Start(_fixture.Primary, c => c with { ShutdownWaitTimeout = TimeSpan.FromSeconds(60) });
        var conn = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(conn, "select 1"));

        var stopping = host.Server.StopAsync(ShutdownMode.Safe);
        await Task.Delay(300);
        Assert.False(stopping.IsCompleted);
        Assert.Equal(2, await ScalarAsync<int>(conn, "select 2"));
        await conn.DisposeAsync();
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));
    }
}
