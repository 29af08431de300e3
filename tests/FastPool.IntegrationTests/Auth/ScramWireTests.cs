using System.Text;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Protocol.Scram;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Auth.AuthTestSupport;

namespace FastPool.IntegrationTests.Auth;

/// <summary>
/// The SCRAM exchange on the wire, driven by hand: malformed messages get 08P01 (or 28P01) and a closed
/// connection, unknown users get an exchange of the same shape, and no secret reaches the log.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ScramWireTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);
    private readonly PostgresFixture _fixture;

    public ScramWireTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    private static byte[] InitialResponse(string mechanism, byte[]? data)
    {
        var body = new List<byte>();
        body.AddRange(Encoding.UTF8.GetBytes(mechanism));
        body.Add(0);
        body.AddRange(RawPgClient.Int32(data?.Length ?? -1));
        body.AddRange(data ?? []);
        return RawPgClient.Message('p', [.. body]);
    }

    /// <summary>Startup, then expects AuthenticationSASL offering exactly SCRAM-SHA-256.</summary>
    private static async Task<RawPgClient> StartScramAsync(ProxyHost proxy, string user)
    {
        var client = await RawPgClient.ConnectAsync(proxy.Port);
        await client.SendAsync(RawPgClient.Startup(Database, user));
        var sasl = await client.ReadMessageAsync(s_timeout);
        Assert.NotNull(sasl);
        Assert.Equal('R', sasl.Type);
        Assert.Equal(10, sasl.Int32At(0));
        Assert.Equal(["SCRAM-SHA-256", ""], sasl.CStringsFrom(4));
        return client;
    }

    /// <summary>Sends client-first and returns server-first's attributes.</summary>
    private static async Task<string> ServerFirstAsync(RawPgClient client, ScramClient scram)
    {
        await client.SendAsync(InitialResponse("SCRAM-SHA-256", scram.ClientFirst()));
        var cont = await client.ReadMessageAsync(s_timeout);
        Assert.NotNull(cont);
        Assert.True(cont.Type == 'R' && cont.Int32At(0) == 11, $"expected SASLContinue, got {cont}");
        return Encoding.UTF8.GetString(cont.Body, 4, cont.Body.Length - 4);
    }

    private static async Task AssertErrorAndCloseAsync(RawPgClient client, string sqlState)
    {
        var (messages, closed) = await client.ReadUntilClosedAsync(s_timeout);
        var error = Assert.Single(messages);
        Assert.Equal('E', error.Type);
        Assert.Equal(sqlState, error.SqlState);
        Assert.True(closed, "the proxy must close the connection after the error");
    }

    public static TheoryData<string, string> MalformedFirstMessages() => new()
    {
        { "channel binding requested though not offered", "p=tls-server-end-point,,n=,r=abcdef" },
        { "garbage", "hello" },
        { "no nonce", "n,,n=" },
        { "authzid", "n,a=admin,n=,r=abcdef" },
        { "nonce with a space", "n,,n=,r=ab cd" },
        { "mandatory extension", "n,,m=x,n=,r=abcdef" },
    };

    [Theory]
    [MemberData(nameof(MalformedFirstMessages))]
    public async Task MalformedClientFirst_Gets08P01AndClose(string what, string clientFirst)
    {
        Assert.NotEmpty(what);
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string> { ["app"] = "pw" }, more: WithAppServerPassword);
        await using (var client = await StartScramAsync(proxy, "app"))
        {
            await client.SendAsync(InitialResponse("SCRAM-SHA-256", Encoding.UTF8.GetBytes(clientFirst)));
            await AssertErrorAndCloseAsync(client, "08P01");
        }

        Assert.Equal("app", await CurrentUserAsync(proxy, "app", "pw"));
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task MalformedSaslFraming_Gets08P01AndClose()
    {
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string> { ["app"] = "pw" }, more: WithAppServerPassword);
        byte[][] bad =
        [
            InitialResponse("SCRAM-SHA-256-PLUS", Encoding.UTF8.GetBytes("p=tls-server-end-point,,n=,r=abc")),
            InitialResponse("SCRAM-SHA-256", null),
            RawPgClient.Message('p', [.. "SCRAM-SHA-256\0"u8, .. RawPgClient.Int32(50), .. "n,,n=,r=abc"u8]),
            RawPgClient.Message('p', [.. "SCRAM-SHA-256"u8]),
            RawPgClient.Query("select 1"),
            [(byte)'p', .. RawPgClient.Int32(1_000_000)],
        ];
        foreach (var message in bad)
        {
            await using var client = await StartScramAsync(proxy, "app");
            await client.SendAsync(message);
            await AssertErrorAndCloseAsync(client, "08P01");
        }

        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task MalformedClientFinal_Gets08P01_WrongProofGets28P01()
    {
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string> { ["app"] = "pw" }, more: WithAppServerPassword);
        var zeroProof = Convert.ToBase64String(new byte[32]);
        string[] malformed =
        [
            "c=biws,r=not-the-nonce,p=" + zeroProof,
            "c=biws,r={0},p=AAAA",
            "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r={0},p=" + zeroProof,
            "c=biws,r={0}",
            "c=biws,r={0},p=" + zeroProof + ",x=after-proof",
            "\0",
        ];
        foreach (var template in malformed)
        {
            await using var client = await StartScramAsync(proxy, "app");
            var nonce = NonceOf(await ServerFirstAsync(client, new ScramClient("pw")));
            await client.SendAsync(RawPgClient.Message('p', Encoding.UTF8.GetBytes(template.Replace("{0}", nonce, StringComparison.Ordinal))));
            await AssertErrorAndCloseAsync(client, "08P01");
        }

        await using (var client = await StartScramAsync(proxy, "app"))
        {
            var nonce = NonceOf(await ServerFirstAsync(client, new ScramClient("pw")));
            await client.SendAsync(RawPgClient.Message('p', Encoding.UTF8.GetBytes($"c=biws,r={nonce},p={zeroProof}")));
            await AssertErrorAndCloseAsync(client, "28P01");
        }

        Assert.Equal("app", await CurrentUserAsync(proxy, "app", "pw"));
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task UnknownUser_GetsAnExchangeOfTheSameShape_WithAStableSalt_AndTheSameError()
    {
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string> { ["app"] = "pw" }, more: WithAppServerPassword);

        async Task<(string ServerFirst, PgMessage Error)> AttemptAsync(string user)
        {
            await using var client = await StartScramAsync(proxy, user);
            var scram = new ScramClient("wrong");
            var serverFirst = await ServerFirstAsync(client, scram);
            Assert.True(scram.TryClientFinal(Encoding.UTF8.GetBytes(serverFirst), out var clientFinal, out var error), error);
            await client.SendAsync(RawPgClient.Message('p', clientFinal));
            var (messages, closed) = await client.ReadUntilClosedAsync(s_timeout);
            Assert.True(closed);
            return (serverFirst, Assert.Single(messages));
        }

        var known = await AttemptAsync("app");
        var unknown = await AttemptAsync("ghost");
        var unknownAgain = await AttemptAsync("ghost");

        Assert.Equal(Shape(known.ServerFirst), Shape(unknown.ServerFirst));
        Assert.Equal(SaltOf(unknown.ServerFirst), SaltOf(unknownAgain.ServerFirst));
        Assert.Equal(16, Convert.FromBase64String(SaltOf(unknown.ServerFirst)).Length);
        Assert.Equal(("28P01", "password authentication failed for user \"app\""), (known.Error.SqlState, known.Error.Text));
        Assert.Equal(("28P01", "password authentication failed for user \"ghost\""), (unknown.Error.SqlState, unknown.Error.Text));
    }

    [Fact]
    public async Task Logs_ContainNoPasswordSecretProofOrNonce()
    {
        var scramSecret = await StoredSecretAsync(_fixture, PostgresFixture.ScramUser);
        var md5Secret = await StoredSecretAsync(_fixture, PostgresFixture.Md5User);
        var users = new Dictionary<string, string>
        {
            [PostgresFixture.AppUser] = PostgresFixture.AppPassword,
            [PostgresFixture.ScramUser] = scramSecret,
            [PostgresFixture.Md5User] = md5Secret,
        };
        var secrets = new List<string> { PostgresFixture.AppPassword, PostgresFixture.ScramPassword, PostgresFixture.Md5Password, "wrong-pw-123", scramSecret, md5Secret };
        Assert.True(ScramSecret.TryParse(scramSecret, out var parsed));
        secrets.Add(Convert.ToBase64String(parsed.StoredKey));
        secrets.Add(Convert.ToBase64String(parsed.ServerKey));

        foreach (var authType in new[] { AuthType.ScramSha256, AuthType.Md5, AuthType.Plain })
        {
            // Database passwords let FastPool log in to the server for every user; they must not be logged either.
            await using var proxy = StartProxy(_fixture, authType, users, more: c => c with
            {
                Databases =
                [
                    c.FallbackDatabase! with { Name = "scramdb", DbName = Database, User = PostgresFixture.ScramUser, Password = PostgresFixture.ScramPassword },
                    c.FallbackDatabase! with { Name = "md5db", DbName = Database, User = PostgresFixture.Md5User, Password = PostgresFixture.Md5Password },
                ],
            });

            Assert.Equal("app", await CurrentUserAsync(proxy, "app", PostgresFixture.AppPassword));
            Assert.Equal(PostgresFixture.ScramUser, await CurrentUserAsync(proxy, PostgresFixture.ScramUser, PostgresFixture.ScramPassword, "scramdb"));
            await AssertPasswordFailureAsync(proxy, "app", "wrong-pw-123");
            await AssertPasswordFailureAsync(proxy, "ghost", "wrong-pw-123");
            if (authType != AuthType.ScramSha256)
            {
                Assert.Equal(PostgresFixture.Md5User, await CurrentUserAsync(proxy, PostgresFixture.Md5User, PostgresFixture.Md5Password, "md5db"));
            }

            if (authType == AuthType.ScramSha256)
            {
                // A hand-driven exchange, so the nonces and the proof are known.
                await using var client = await StartScramAsync(proxy, "app");
                var scram = new ScramClient(PostgresFixture.AppPassword, "client-nonce-0123456789");
                var serverFirst = await ServerFirstAsync(client, scram);
                Assert.True(scram.TryClientFinal(Encoding.UTF8.GetBytes(serverFirst), out var clientFinal, out var error), error);
                await client.SendAsync(RawPgClient.Message('p', clientFinal));
                var final = await client.ReadMessageAsync(s_timeout);
                Assert.True(final is { Type: 'R' } && final.Int32At(0) == 12, $"expected SASLFinal, got {final}");
                Assert.True(scram.TryVerifyServerFinal(final.Body.AsSpan(4), out error), error);
                await client.ReadUntilAsync('Z', s_timeout);

                var finalText = Encoding.UTF8.GetString(clientFinal);
                secrets.Add(NonceOf(serverFirst));
                secrets.Add(NonceOf(serverFirst)["client-nonce-0123456789".Length..]);
                secrets.Add(finalText[(finalText.IndexOf(",p=", StringComparison.Ordinal) + 3)..]);
                secrets.Add(Encoding.UTF8.GetString(final.Body, 6, final.Body.Length - 6));
            }

            // A failed server login (wrong database password) must not log the password it tried either.
            await using (var failing = StartProxy(_fixture, AuthType.Trust, new Dictionary<string, string> { [PostgresFixture.ScramUser] = "wrong-pw-123" }))
            {
                await AssertPasswordFailureAsync(failing, PostgresFixture.ScramUser, null);
                AssertNoSecrets(failing.Logs, secrets);
            }

            Assert.NotEmpty(proxy.Logs);
            AssertNoSecrets(proxy.Logs, secrets);
        }
    }

    [Theory]
    [InlineData(AuthType.Plain, 3)]
    [InlineData(AuthType.Md5, 5)]
    public async Task MalformedPasswordMessage_Gets08P01AndClose(AuthType authType, int requestCode)
    {
        await using var proxy = StartProxy(_fixture, authType, new Dictionary<string, string> { ["app"] = "pw" }, more: WithAppServerPassword);
        byte[][] bad =
        [
            RawPgClient.Message('p', "pw"u8.ToArray()), // no terminating NUL
            RawPgClient.Message('p', "pw\0extra\0"u8.ToArray()), // two strings
            RawPgClient.Message('p', []), // empty
            [(byte)'p', .. RawPgClient.Int32(3)], // length below its own four bytes
            [(byte)'p', .. RawPgClient.Int32(70_000)], // longer than any password
        ];
        foreach (var message in bad)
        {
            await using var client = await RawPgClient.ConnectAsync(proxy.Port);
            await client.SendAsync(RawPgClient.Startup(Database, "app"));
            var request = await client.ReadMessageAsync(s_timeout);
            Assert.True(request is { Type: 'R' } && request.Int32At(0) == requestCode, $"expected authentication request {requestCode}, got {request}");
            await client.SendAsync(message);
            await AssertErrorAndCloseAsync(client, "08P01");
        }

        Assert.Equal("app", await CurrentUserAsync(proxy, "app", "pw"));
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task ReplayedExchange_FromAnEarlierLogin_Gets08P01()
    {
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string> { ["app"] = "pw" }, more: WithAppServerPassword);

        // A successful exchange, recorded as an eavesdropper would.
        byte[] clientFinal;
        await using (var client = await StartScramAsync(proxy, "app"))
        {
            var scram = new ScramClient("pw", "replayed-client-nonce");
            var serverFirst = await ServerFirstAsync(client, scram);
            Assert.True(scram.TryClientFinal(Encoding.UTF8.GetBytes(serverFirst), out var final, out var error), error);
            clientFinal = final;
            await client.SendAsync(RawPgClient.Message('p', clientFinal));
            var saslFinal = await client.ReadMessageAsync(s_timeout);
            Assert.True(saslFinal is { Type: 'R' } && saslFinal.Int32At(0) == 12, $"expected SASLFinal, got {saslFinal}");
        }

        // The same client-first and client-final again: the server's half of the nonce is new, so the proof is
        // for another exchange and the login is refused.
        await using (var client = await StartScramAsync(proxy, "app"))
        {
            await ServerFirstAsync(client, new ScramClient("pw", "replayed-client-nonce"));
            await client.SendAsync(RawPgClient.Message('p', clientFinal));
            await AssertErrorAndCloseAsync(client, "08P01");
        }

        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task ClientStallingMidExchange_GetsClientLoginTimeout_AndIsClosed()
    {
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string> { ["app"] = "pw" },
            more: c => WithAppServerPassword(c) with { ClientLoginTimeout = TimeSpan.FromSeconds(1) });

        // Silent after AuthenticationSASL, then after server-first-message.
        await using (var client = await StartScramAsync(proxy, "app"))
        {
            await AssertErrorAndCloseAsync(client, "08P01");
        }

        await using (var client = await StartScramAsync(proxy, "app"))
        {
            await ServerFirstAsync(client, new ScramClient("pw"));
            await AssertErrorAndCloseAsync(client, "08P01");
        }

        Assert.Contains(proxy.Logs, l => l.Contains("client_login_timeout", StringComparison.Ordinal));
        Assert.Equal("app", await CurrentUserAsync(proxy, "app", "pw"));
    }

    /// <summary>The client password "pw" is not app's server password, so the server login takes it from the database entry.</summary>
    private static ProxyConfig WithAppServerPassword(ProxyConfig c) =>
        c with { FallbackDatabase = c.FallbackDatabase! with { Password = PostgresFixture.AppPassword } };

    private static void AssertNoSecrets(IEnumerable<string> logs, List<string> secrets)
    {
        foreach (var line in logs)
        {
            foreach (var secret in secrets)
            {
                Assert.False(line.Contains(secret, StringComparison.Ordinal), $"log line contains a secret: {line}");
            }
        }
    }

    private static string Attribute(string message, char name) =>
        message.Split(',').Single(a => a.StartsWith(name + "=", StringComparison.Ordinal))[2..];

    private static string NonceOf(string serverFirst) => Attribute(serverFirst, 'r');

    private static string SaltOf(string serverFirst) => Attribute(serverFirst, 's');

    /// <summary>Attribute names, nonce and salt lengths, iteration count: all a client can compare.</summary>
    private static string Shape(string serverFirst) =>
        $"{string.Join(",", serverFirst.Split(',').Select(a => a[0]))} r:{NonceOf(serverFirst).Length} s:{SaltOf(serverFirst).Length} i:{Attribute(serverFirst, 'i')}";
}
