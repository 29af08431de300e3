using System.Diagnostics;
using FastPool.IntegrationTests.Infrastructure;

namespace FastPool.IntegrationTests.Resilience;

/// <summary>
/// Raw-socket clients sending what no driver would. Each gets the error PostgreSQL itself would send (or is
/// simply dropped), and the proxy keeps serving normal clients afterwards.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class BadClientInputTests
{
    private static readonly TimeSpan s_replyTimeout = TimeSpan.FromSeconds(5);

    private readonly PostgresFixture _fixture;

    public BadClientInputTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    public static TheoryData<string, byte[]> MalformedStartupPackets() => new()
    {
        // Length 3 (less than the length word plus the version), followed by a version word.
        { "length 3", [.. RawPgClient.Int32(3), .. RawPgClient.Int32(RawPgClient.ProtocolVersion30)] },

        // Longer than PostgreSQL's MAX_STARTUP_PACKET_LENGTH (10000).
        { "length 100000", [.. RawPgClient.Int32(100_000), .. RawPgClient.Int32(RawPgClient.ProtocolVersion30)] },

        // Parameters without the zero byte that closes the list.
        { "no terminating zero", RawPgClient.Startup(RawPgClient.ProtocolVersion30, [("user", "postgres"), ("database", "postgres")], terminate: false) },
    };

    [Theory]
    [MemberData(nameof(MalformedStartupPackets))]
    public async Task MalformedStartupPacket_Gets08P01_AndConnectionCloses(string what, byte[] packet)
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await client.SendAsync(packet);
            var (messages, closed) = await client.ReadUntilClosedAsync(s_replyTimeout);
            var error = Assert.Single(messages);
            Assert.Equal('E', error.Type);
            Assert.True(error.SqlState == "08P01", $"{what}: got {error}");
            Assert.True(closed, $"{what}: the proxy kept the connection open");
        }

        await ProxyChecks.AssertServesAsync(proxy);
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_startup_without_a_user_name_gets_PostgreSQLs_28000(bool emptyUser)
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            (string, string)[] parameters = emptyUser ? [("user", ""), ("database", "postgres")] : [("database", "postgres")];
            await client.SendAsync(RawPgClient.Startup(RawPgClient.ProtocolVersion30, parameters));
            var (messages, closed) = await client.ReadUntilClosedAsync(s_replyTimeout);
            var error = Assert.Single(messages);
            Assert.Equal(("28000", "no PostgreSQL user name specified in startup packet"), (error.SqlState, error.Text));
            Assert.True(closed);
        }

        await ProxyChecks.AssertServesAsync(proxy);
    }

    [Fact]
    public async Task TruncatedStartupPacket_ThenClose_ProxyUnaffected()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        var full = RawPgClient.Startup("postgres");
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await client.SendAsync(full[..(full.Length / 2)]);
            client.ShutdownSend();
            var (messages, closed) = await client.ReadUntilClosedAsync(s_replyTimeout);
            Assert.Empty(messages);
            Assert.True(closed, "the proxy did not close a half-sent startup after the client's EOF");
        }

        await ProxyChecks.AssertServesAsync(proxy);
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task ProtocolVersion2_Gets0A000()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await client.SendAsync(RawPgClient.Startup(2 << 16, [("user", "postgres"), ("database", "postgres")]));
            var (messages, closed) = await client.ReadUntilClosedAsync(s_replyTimeout);
            var error = Assert.Single(messages);
            Assert.Equal('E', error.Type);
            Assert.Equal("0A000", error.SqlState);
            Assert.Contains("protocol", error.Text, StringComparison.OrdinalIgnoreCase);
            Assert.True(closed);
        }

        await ProxyChecks.AssertServesAsync(proxy);
    }

    [Fact]
    public async Task Protocol32WithUnknownOption_GetsNegotiateProtocolVersion_ThenLogsIn()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await client.SendAsync(RawPgClient.Startup((3 << 16) | 2, [("user", "postgres"), ("database", "postgres"), ("_pq_.foo", "bar")]));
            var messages = await client.ReadUntilAsync('Z', s_replyTimeout);

            var negotiate = messages[0];
            Assert.Equal('v', negotiate.Type);
            Assert.Equal(3 << 16, negotiate.Int32At(0)); // newest version supported: 3.0
            Assert.Equal(1, negotiate.Int32At(4));
            Assert.Equal(["_pq_.foo"], negotiate.CStringsFrom(8));

            Assert.Equal('R', messages[1].Type);
            Assert.Equal(0, messages[1].Int32At(0)); // AuthenticationOk
            Assert.DoesNotContain(messages, m => m.Type == 'E');
            Assert.Contains(messages, m => m.Type == 'K');

            Assert.Equal("7", await client.QueryScalarAsync("select 3 + 4"));
        }

        await ProxyChecks.AssertServesAsync(proxy);
    }

    [Fact]
    public async Task SslRequest_GetsN_ThenPlainStartupWorks()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await client.SendAsync(RawPgClient.SslRequest());
            Assert.Equal((byte)'N', await client.ReadByteAsync(s_replyTimeout));

            await client.LoginAsync("postgres");
            Assert.Equal("ok", await client.QueryScalarAsync("select 'ok'"));
        }

        await ProxyChecks.AssertServesAsync(proxy);
    }

    [Fact]
    public async Task UnknownMessageTypeAfterLogin_Gets08P01_AndConnectionCloses()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await client.LoginAsync("postgres");
            await client.SendAsync([0x01, .. RawPgClient.Int32(4)]);
            var (messages, closed) = await client.ReadUntilClosedAsync(s_replyTimeout);
            var error = Assert.Single(messages);
            Assert.Equal('E', error.Type);
            Assert.Equal("08P01", error.SqlState);
            Assert.True(closed, "the proxy kept the connection open after a protocol violation");
        }

        await ProxyChecks.AssertServesAsync(proxy);
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Theory]
    [InlineData(FastPool.Proxy.Configuration.PoolMode.Session)]
    [InlineData(FastPool.Proxy.Configuration.PoolMode.Transaction)]
    public async Task A_bad_message_after_a_good_query_in_one_packet_still_lets_the_client_see_the_query_commit(FastPool.Proxy.Configuration.PoolMode mode)
    {
        // PostgreSQL runs the Query, answers it, and only then reads the bad message: its client learns that the
        // INSERT committed before it gets the FATAL. Through FastPool too.
        string table = "bad_after_good_" + mode.ToString().ToLowerInvariant();
        await _fixture.Primary.PsqlAsync($"drop table if exists {table}; create table {table} (id int)");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { PoolMode = mode });
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await client.LoginAsync("postgres");
            await client.SendAsync([.. RawPgClient.Query($"insert into {table} values (1)"), (byte)'z', .. RawPgClient.Int32(4)]);
            var (messages, closed) = await client.ReadUntilClosedAsync(s_replyTimeout);
            Assert.Equal("CZE", new string([.. messages.Select(m => m.Type)]));
            Assert.Equal("INSERT 0 1", messages[0].CStringsFrom(0)[0]);
            Assert.Equal("08P01", messages[2].SqlState);
            Assert.True(closed, "the proxy kept the connection open after a protocol violation");
        }

        Assert.Equal("1", await _fixture.Primary.PsqlAsync($"select count(*) from {table}"));
        await ProxyChecks.AssertServesAsync(proxy);
        await _fixture.Primary.PsqlAsync($"drop table {table}");
    }

    [Theory]
    [InlineData(FastPool.Proxy.Configuration.PoolMode.Session, "skipping to Sync")]
    [InlineData(FastPool.Proxy.Configuration.PoolMode.Transaction, "skipping to Sync")]
    [InlineData(FastPool.Proxy.Configuration.PoolMode.Session, "COPY IN")]
    [InlineData(FastPool.Proxy.Configuration.PoolMode.Transaction, "COPY IN")]
    public async Task A_bad_message_while_the_server_waits_on_the_client_ends_the_session_and_frees_the_server(FastPool.Proxy.Configuration.PoolMode mode, string state)
    {
        // The answers the server still owes wait on the client: an error makes it discard everything up to a Sync,
        // or a COPY IN waits for data. The bad message means neither comes: the client gets its FATAL at once, as
        // from PostgreSQL, and the one server of the pool is free for the next client (it used to stay taken).
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { PoolMode = mode, DefaultPoolSize = 1, QueryWaitTimeout = TimeSpan.FromSeconds(10) });
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await client.LoginAsync("postgres");
            byte[] before = state == "COPY IN"
                ? RawPgClient.Query("create temp table bad_copy_in (a int); copy bad_copy_in from stdin")
                : [.. RawPgClient.Message('E', [.. "nosuch\0"u8, .. RawPgClient.Int32(0)]), .. RawPgClient.Query("select 1")];
            // In one packet: the good messages go to the server, and the proxy waits for their answers before it
            // reports the bad one.
            await client.SendAsync([.. before, 0, .. RawPgClient.Int32(8), .. "abcd"u8]);
            var (messages, closed) = await client.ReadUntilClosedAsync(s_replyTimeout);
            Assert.Equal(state == "COPY IN" ? "CGE" : "EE", new string([.. messages.Select(m => m.Type)]));
            if (state != "COPY IN")
            {
                Assert.Equal("34000", messages[0].SqlState);
            }

            Assert.Equal("08P01", messages[^1].SqlState);
            Assert.True(closed, $"{state}: the proxy kept the connection open after a protocol violation");
        }

        await ProxyChecks.AssertServesAsync(proxy);
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Theory]
    [InlineData(FastPool.Proxy.Configuration.PoolMode.Session)]
    [InlineData(FastPool.Proxy.Configuration.PoolMode.Transaction)]
    public async Task A_server_that_ends_the_session_with_its_own_FATAL_is_not_followed_by_another(FastPool.Proxy.Configuration.PoolMode mode)
    {
        // A Query during COPY FROM STDIN: PostgreSQL reports it and ends the connection with a FATAL of its own.
        // The client sees exactly what PostgreSQL sent, not FastPool's "server conn crashed?" (08006) after it.
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { PoolMode = mode });
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await client.LoginAsync("postgres");
            await client.SendAsync(RawPgClient.Query("create temp table fatal_copy_in (a int); copy fatal_copy_in from stdin"));
            Assert.Equal('C', (await client.ReadMessageAsync(s_replyTimeout))!.Type);
            Assert.Equal('G', (await client.ReadMessageAsync(s_replyTimeout))!.Type);

            await client.SendAsync(RawPgClient.Query("select 1"));
            var (messages, closed) = await client.ReadUntilClosedAsync(s_replyTimeout);
            var errors = messages.Where(m => m.Type == 'E').ToList();
            Assert.NotEmpty(errors);
            Assert.All(errors, e => Assert.Equal("08P01", e.SqlState));
            Assert.True(closed, "the connection stayed open after the server's FATAL");
        }

        await ProxyChecks.AssertServesAsync(proxy);
    }

    [Fact]
    public async Task OversizedMessage_Gets08P01MentioningMaxPacketSize()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { MaxPacketSize = 1024 });
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await client.LoginAsync("postgres");

            // A query that fits is fine.
            Assert.Equal("1", await client.QueryScalarAsync("select 1"));

            var big = RawPgClient.Query("select '" + new string('x', 2000) + "'");
            Assert.True(big.Length > 2000);
            await client.SendAsync(big);
            var (messages, closed) = await client.ReadUntilClosedAsync(s_replyTimeout);
            var error = Assert.Single(messages);
            Assert.Equal("08P01", error.SqlState);
            Assert.Contains("max_packet_size", error.Text, StringComparison.Ordinal);
            Assert.True(closed);
        }

        // Npgsql's own type-loading query is over 1024 bytes, so the "still serving" check is a raw client here.
        await using (var after = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await after.LoginAsync("postgres");
            Assert.Equal("1", await after.QueryScalarAsync("select 1"));
        }

        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(-1)]
    public async Task MessageLengthBelowFour_Gets08P01(int length)
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            await client.LoginAsync("postgres");
            await client.SendAsync([(byte)'Q', .. RawPgClient.Int32(length)]);
            var (messages, closed) = await client.ReadUntilClosedAsync(s_replyTimeout);
            var error = Assert.Single(messages);
            Assert.Equal("08P01", error.SqlState);
            Assert.True(closed);
        }

        await ProxyChecks.AssertServesAsync(proxy);
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task SilentClient_IsDisconnected_AfterClientLoginTimeout()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { ClientLoginTimeout = TimeSpan.FromSeconds(1) });
        await using (var client = await RawPgClient.ConnectAsync(proxy.Port))
        {
            var sw = Stopwatch.StartNew();
            var (messages, closed) = await client.ReadUntilClosedAsync(TimeSpan.FromSeconds(8));
            sw.Stop();
            Assert.True(closed, "a client that sent nothing was still connected after 8 s (client_login_timeout = 1 s)");
            Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.8), $"dropped before client_login_timeout: {sw.Elapsed}");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"dropped only after {sw.Elapsed}");
            Assert.All(messages, m => Assert.Equal('E', m.Type));
        }

        await ProxyChecks.AssertServesAsync(proxy);
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }
}
