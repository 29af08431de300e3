using System.Text;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Transport;

namespace FastPool.IntegrationTests.Transport;

/// <summary>
/// What the transport must get right whichever one runs: a client that stops reading (the proxy's sends
/// fill the socket and wait, and nobody else waits with them), partial sends that resume where they
/// stopped, a reset in the middle of a message, and both transports chosen by config.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class TransportTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);
    private readonly PostgresFixture _fixture;

    public TransportTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task ClientThatStopsReading_GetsEveryRowLater_OtherClientsServedMeanwhile()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var slow = await RawPgClient.ConnectAsync(proxy.Port);
        await slow.LoginAsync("postgres");

        // About 24 MB of rows: far more than the socket buffers between proxy and client hold, so the
        // proxy's sends go partial and then wait for the client to drain.
        const int rows = 12_000;
        await slow.SendAsync(RawPgClient.Query($"select i, repeat('x', 2000) from generate_series(1, {rows}) i"));
        await Task.Delay(1500);

        // The stalled session holds one server; everybody else is served as usual.
        for (int i = 0; i < 3; i++)
        {
            await ProxyChecks.AssertServesAsync(proxy);
        }

        int dataRows = 0;
        long lastId = 0;
        string? tag = null;
        while (true)
        {
            var message = await slow.ReadMessageAsync(s_timeout) ?? throw new InvalidOperationException("proxy closed the slow client");
            if (message.Type == 'D')
            {
                dataRows++;
                lastId = long.Parse(message.Columns()[0]!, System.Globalization.CultureInfo.InvariantCulture);
                Assert.Equal(dataRows, lastId);
            }
            else if (message.Type == 'C')
            {
                tag = Encoding.UTF8.GetString(message.Body, 0, message.Body.Length - 1);
            }
            else if (message.Type == 'Z')
            {
                break;
            }
            else if (message.Type != 'T')
            {
                Assert.Fail($"unexpected message {message}");
            }
        }

        Assert.Equal(rows, dataRows);
        Assert.Equal($"SELECT {rows}", tag);
        Assert.Equal("1", await slow.QueryScalarAsync("select 1"));
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task ResetInTheMiddleOfAMessage_ProxyAndItsServersStayHealthy()
    {
        var backend = _fixture.Primary;
        await using var db = await TempDatabase.CreateAsync(backend, "tx_reset");
        await using var proxy = ProxyHost.Start(backend, c => c with { DefaultPoolSize = 1 });
        for (int i = 0; i < 5; i++)
        {
            await using var client = await RawPgClient.ConnectAsync(proxy.Port);
            await client.LoginAsync(db.Name);
            var query = RawPgClient.Query("select 'a long enough statement to be cut in two'");
            await client.SendAsync(query[..(query.Length / 2)]);
            client.AbortWithReset();
        }

        // With a pool of one, every later client needs that one server connection back, clean.
        await ProxyChecks.AssertServesAsync(proxy, db.Name);
        Assert.Equal(42, await ProxyChecks.OpenAndScalarAsync(proxy, db.Name, "postgres", "select 42"));
        Assert.True(await Backend.CountAsync(backend, db.Name) <= 1, "the pool of one opened more than one server connection");
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Theory]
    [InlineData(TransportKind.Sockets)]
    [InlineData(TransportKind.Epoll)]
    [InlineData(TransportKind.IoUring)]
    public async Task EachTransport_ServesQueriesAndSaysWhichItIs(TransportKind kind)
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { FastPool = c.FastPool with { Transport = kind } });

        // One client after another; a burst of logins on a cold pool is the test below.
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(i, await ProxyChecks.OpenAndScalarAsync(proxy, "postgres", "postgres", $"select {i}"));
        }

        var expected = kind switch
        {
            TransportKind.Sockets => "transport: sockets",
            TransportKind.IoUring => "transport: io_uring",
            _ => "transport: epoll",
        };
        Assert.Contains(proxy.Logs, line => line.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(TransportKind.Sockets)]
    [InlineData(TransportKind.Epoll)]
    [InlineData(TransportKind.IoUring)]
    public async Task BurstOfLoginsOnAColdPool_AllServed(TransportKind kind)
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { FastPool = c.FastPool with { Transport = kind } });
        // Eight independent applications (one Npgsql data source each). Eight connections of ONE data source
        // would test Npgsql, not the proxy: the data source loads its type catalog once, on whichever
        // connection gets there first, and the others wait for it; in session mode with the test pool of 5 that
        // loader may be one of the three clients still waiting for a server that the five waiting ones hold,
        // a deadlock PgBouncer would show the same way.
        var tasks = Enumerable.Range(0, 8).Select(async i =>
        {
            var cs = new Npgsql.NpgsqlConnectionStringBuilder(proxy.ConnectionString()) { ApplicationName = $"burst{i}" }.ConnectionString;
            await using var conn = new Npgsql.NpgsqlConnection(cs);
            await conn.OpenAsync();
            return await ProxyChecks.ScalarAsync(conn, $"select {i}");
        });
        var results = await Task.WhenAll(tasks);
        Assert.Equal(Enumerable.Range(0, 8).Cast<object?>(), results);
    }
}
