using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Tls.TlsTestSupport;

namespace FastPool.IntegrationTests.Tls;

/// <summary>client_tls_sslmode through Npgsql and psql: who gets in, over what, and what the refused see.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ClientTlsTests
{
    private readonly PostgresFixture _fixture;

    public ClientTlsTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    /// <summary>Only TLS clients get in through a hostssl-only rule set, which proves the connection really is TLS.</summary>
    private const string TlsOnlyHba = """
        hostssl    all  all  127.0.0.1/32  trust
        hostnossl  all  all  127.0.0.1/32  reject
        """;

    private ProxyHost Start(TlsSettings tls, AuthType auth = AuthType.Trust, string? hba = null, IReadOnlyDictionary<string, string>? users = null) =>
        Auth.AuthTestSupport.StartProxy(_fixture, auth, users ?? ProxyHost.TrustedUsers, hba, c => c with { ClientTls = tls });

    [Fact]
    public async Task Require_TlsClientsGetRows_PlaintextIsRefusedWith28000()
    {
        await using var proxy = Start(ClientTls(TlsMode.Require), AuthType.Hba, TlsOnlyHba);

        Assert.Equal("app", await ScalarAsync(Client(proxy, SslMode.Require)));
        Assert.Equal("app", await ScalarAsync(Client(proxy, SslMode.VerifyFull)));
        Assert.Equal(42, await ScalarAsync(Client(proxy, SslMode.VerifyFull), "select 42"));

        await AssertFailsAsync(Client(proxy, SslMode.Disable), PostgresErrorCodes.InvalidAuthorizationSpecification, "SSL required");
    }

    [Fact]
    public async Task Prefer_AllowsTlsAndPlaintext_HbaSeesWhich()
    {
        await using var proxy = Start(ClientTls(TlsMode.Prefer), AuthType.Hba, """
            hostssl    all  app  127.0.0.1/32  trust
            hostnossl  all  app  127.0.0.1/32  reject
            """);

        Assert.Equal("app", await ScalarAsync(Client(proxy, SslMode.Require)));
        await AssertFailsAsync(Client(proxy, SslMode.Disable), PostgresErrorCodes.InvalidAuthorizationSpecification,
            "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"app\", database \"appdb\", no encryption");
    }

    [Theory]
    [InlineData(TlsMode.Allow)]
    [InlineData(TlsMode.Prefer)]
    public async Task AllowAndPrefer_PlaintextAndTlsClientsLogIn(TlsMode mode)
    {
        await using var proxy = Start(ClientTls(mode));
        Assert.Equal("app", await ScalarAsync(Client(proxy, SslMode.Disable)));
        Assert.Equal("app", await ScalarAsync(Client(proxy, SslMode.Prefer)));
        Assert.Equal("app", await ScalarAsync(Client(proxy, SslMode.VerifyFull)));
    }

    [Fact]
    public async Task HostNoSsl_RefusesTlsClients_WithSslEncryptionInTheMessage()
    {
        await using var proxy = Start(ClientTls(TlsMode.Prefer), AuthType.Hba, "hostnossl all all 127.0.0.1/32 trust");

        Assert.Equal("app", await ScalarAsync(Client(proxy, SslMode.Disable)));
        await AssertFailsAsync(Client(proxy, SslMode.Require), PostgresErrorCodes.InvalidAuthorizationSpecification,
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"app\", database \"appdb\", SSL encryption");
    }

    [Fact]
    public async Task Disable_AnswersN_SoRequireClientsFail()
    {
        await using var proxy = Start(new TlsSettings());
        Assert.Equal("app", await ScalarAsync(Client(proxy, SslMode.Prefer)));
        await using var conn = new NpgsqlConnection(Client(proxy, SslMode.Require).ConnectionString);
        var ex = await Assert.ThrowsAnyAsync<NpgsqlException>(() => conn.OpenAsync());
        Assert.Contains("No SSL enabled", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VerifyFull_WrongHostName_Fails_VerifyCaPasses()
    {
        await using var proxy = Start(ClientTls(TlsMode.Require, TestPki.Shared.WrongHost));

        Assert.Equal("app", await ScalarAsync(Client(proxy, SslMode.VerifyCA)));
        await using var conn = new NpgsqlConnection(Client(proxy, SslMode.VerifyFull).ConnectionString);
        await Assert.ThrowsAnyAsync<Exception>(() => conn.OpenAsync());

        var psql = await PsqlAsync(proxy, "verify-full", "select 1");
        Assert.NotEqual(0, psql.ExitCode);
        Assert.Contains("does not match host name \"127.0.0.1\"", psql.StandardError);
    }

    [Fact]
    public async Task Psql_RequireAndVerifyFull_GetRows_DisableIsRefused()
    {
        await using var proxy = Start(ClientTls(TlsMode.Require), AuthType.Hba, TlsOnlyHba);

        var require = await PsqlAsync(proxy, "require", "select 'over tls'");
        Assert.True(require.ExitCode == 0, require.ToString());
        Assert.Equal("over tls", require.StandardOutput.Trim());

        var verifyFull = await PsqlAsync(proxy, "verify-full", "select 7 * 6");
        Assert.True(verifyFull.ExitCode == 0, verifyFull.ToString());
        Assert.Equal("42", verifyFull.StandardOutput.Trim());

        var plain = await PsqlAsync(proxy, "disable", "select 1");
        Assert.NotEqual(0, plain.ExitCode);
        Assert.Contains("SSL required", plain.StandardError);
    }

    [Theory]
    [InlineData(TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256)]
    [InlineData(TlsCipherSuite.TLS_AES_128_GCM_SHA256)]
    public async Task Tls13Ciphers_AreWhatTheClientGets(TlsCipherSuite suite)
    {
        // client_tls13_ciphers with one suite: psql (OpenSSL, which prefers AES-256-GCM) reports that one.
        await using var proxy = Start(ClientTls(TlsMode.Require) with { Tls13CipherSuites = [suite] });

        var psql = await PsqlAsync(proxy, "require", "\\conninfo");
        Assert.True(psql.ExitCode == 0, psql.ToString());
        Assert.Contains($"protocol: TLSv1.3, cipher: {suite}", psql.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DirectTlsNegotiation_IsAccepted()
    {
        await using var proxy = Start(ClientTls(TlsMode.Require), AuthType.Hba, TlsOnlyHba);
        var b = Client(proxy, SslMode.VerifyFull);
        b.SslNegotiation = SslNegotiation.Direct;
        Assert.Equal("app", await ScalarAsync(b));
    }

    [Fact]
    public async Task Tls12Protocol_AndTls12Cipher_AreWhatTheClientGets()
    {
        // client_tls_protocols = tlsv1.2 and one TLS 1.2 suite (the test certificates are ECDSA); psql names
        // the suite as OpenSSL does.
        await using var proxy = Start(ClientTls(TlsMode.Require) with
        {
            Protocols = System.Security.Authentication.SslProtocols.Tls12,
            CipherSuites = [TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256],
        });

        var psql = await PsqlAsync(proxy, "require", "\\conninfo");
        Assert.True(psql.ExitCode == 0, psql.ToString());
        Assert.Contains("protocol: TLSv1.2, cipher: ECDHE-ECDSA-CHACHA20-POLY1305", psql.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DirectTls_WithoutAlpn_IsRefusedWith08P01()
    {
        // A TLS client that does not say "postgresql" in ALPN may be speaking another protocol (55.2.10).
        await using var proxy = Start(ClientTls(TlsMode.Require));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", proxy.Port);
        await using var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, _, _, _) => true);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" }, cts.Token);

        var reply = new byte[4096];
        int total = 0;
        try
        {
            int n;
            while (total < reply.Length && (n = await ssl.ReadAsync(reply.AsMemory(total), cts.Token)) > 0)
            {
                total += n;
            }
        }
        catch (IOException)
        {
            // The proxy closed the socket right after its error; what arrived before is what counts.
        }

        Assert.True(total > 0, "no answer before the connection closed");
        Assert.Equal((byte)'E', reply[0]);
        var text = Encoding.UTF8.GetString(reply, 0, total);
        Assert.Contains("C08P01\0", text);
        Assert.Contains("without ALPN", text);
    }

    [Fact]
    public async Task PlaintextAfterSslRequest_IsRefusedWith08P01()
    {
        await using var proxy = Start(ClientTls(TlsMode.Prefer));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", proxy.Port);

        // SSLRequest and, without waiting for 'S', a startup packet in plaintext: one write, so one segment.
        byte[] sslRequest = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F];
        var startup = new List<byte> { 0, 0, 0, 0, 0, 3, 0, 0 };
        startup.AddRange(Encoding.ASCII.GetBytes("user\0app\0\0"));
        startup[3] = (byte)startup.Count;
        await socket.SendAsync(sslRequest.Concat(startup).ToArray());

        var reply = new byte[1024];
        int total = 0, n;
        while ((n = await socket.ReceiveAsync(reply.AsMemory(total))) > 0)
        {
            total += n;
        }

        Assert.True(total > 0);
        Assert.Equal((byte)'E', reply[0]);
        var text = Encoding.UTF8.GetString(reply, 0, total);
        Assert.Contains("C08P01\0", text);
        Assert.Contains("received unencrypted data after SSL request", text);
    }

    [Fact]
    public async Task ScramOverTls_IsChannelBound_PsqlAndNpgsqlRequiringItLogIn_AWrongPasswordGets28P01()
    {
        // The auth_file holds the secret as PostgreSQL stores it: the bound login's proof also gives the keys the
        // server login needs (passthrough), so nothing but the client knows the password.
        var user = PostgresFixture.ScramUser;
        var secret = await Auth.AuthTestSupport.StoredSecretAsync(_fixture, user);
        await using var proxy = Start(ClientTls(TlsMode.Require), AuthType.ScramSha256, users: new Dictionary<string, string> { [user] = secret });

        // channel_binding=require / ChannelBinding.Require: the client refuses a login that SCRAM-SHA-256-PLUS did not bind.
        var bound = Client(proxy, SslMode.Require, user, PostgresFixture.ScramPassword);
        bound.ChannelBinding = ChannelBinding.Require;
        Assert.Equal(user, await ScalarAsync(bound));
        var psql = await PsqlAsync(proxy, "require", "select current_user", user, $"password={PostgresFixture.ScramPassword} channel_binding=require");
        Assert.True(psql.ExitCode == 0, psql.ToString());
        Assert.Equal(user, psql.StandardOutput.Trim());

        // A client that does not bind still logs in with SCRAM-SHA-256 over the same TLS.
        var unbound = Client(proxy, SslMode.Require, user, PostgresFixture.ScramPassword);
        unbound.ChannelBinding = ChannelBinding.Disable;
        Assert.Equal(user, await ScalarAsync(unbound));

        // Wrong password and unknown user, bound: the same 28P01 as without binding.
        var wrong = Client(proxy, SslMode.Require, user, "wrong");
        wrong.ChannelBinding = ChannelBinding.Require;
        await AssertFailsAsync(wrong, PostgresErrorCodes.InvalidPassword, $"password authentication failed for user \"{user}\"");
        var unknown = Client(proxy, SslMode.Require, "fp_nobody", "wrong");
        unknown.ChannelBinding = ChannelBinding.Require;
        await AssertFailsAsync(unknown, PostgresErrorCodes.InvalidPassword, "password authentication failed for user \"fp_nobody\"");
        var psqlWrong = await PsqlAsync(proxy, "require", "select 1", user, "password=wrong channel_binding=require");
        Assert.Equal(2, psqlWrong.ExitCode);
        Assert.Contains($"password authentication failed for user \"{user}\"", psqlWrong.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CertAuth_CommonNameIsTheUser()
    {
        var pki = TestPki.Shared;
        await using var proxy = Start(ClientTls(TlsMode.Require, caFile: pki.CaFile), AuthType.Cert);

        var good = Client(proxy, SslMode.VerifyFull);
        (good.SslCertificate, good.SslKey) = pki.Client("app");
        Assert.Equal("app", await ScalarAsync(good));

        // The certificate says app; logging in as someone else with it fails.
        var other = Client(proxy, SslMode.VerifyFull, user: PostgresFixture.ScramUser);
        (other.SslCertificate, other.SslKey) = pki.Client("app");
        await AssertFailsAsync(other, PostgresErrorCodes.InvalidAuthorizationSpecification, "certificate authentication failed for user \"scram_user\"");

        await AssertFailsAsync(Client(proxy, SslMode.VerifyFull), PostgresErrorCodes.InvalidAuthorizationSpecification, "connection requires a valid client certificate");

        var psql = await PsqlAsync(proxy, "verify-full", "select current_user", extra: $"sslcert={pki.Client("app").Cert} sslkey={pki.Client("app").Key}");
        Assert.True(psql.ExitCode == 0, psql.ToString());
        Assert.Equal("app", psql.StandardOutput.Trim());
    }

    [Fact]
    public async Task VerifyCa_ClientWithoutCertificate_FailsTheHandshake()
    {
        var pki = TestPki.Shared;
        await using var proxy = Start(ClientTls(TlsMode.VerifyCa, caFile: pki.CaFile), AuthType.Cert);

        var good = Client(proxy, SslMode.VerifyFull);
        (good.SslCertificate, good.SslKey) = pki.Client("app");
        Assert.Equal("app", await ScalarAsync(good));

        await using var conn = new NpgsqlConnection(Client(proxy, SslMode.VerifyFull).ConnectionString);
        await Assert.ThrowsAnyAsync<Exception>(() => conn.OpenAsync());
        await using var plain = new NpgsqlConnection(Client(proxy, SslMode.Disable).ConnectionString);
        var ex = await Assert.ThrowsAsync<PostgresException>(() => plain.OpenAsync());
        Assert.Equal("SSL required", ex.MessageText);
    }

    [Fact]
    public async Task HbaCertLine_NeedsTheCertificate()
    {
        var pki = TestPki.Shared;
        await using var proxy = Start(ClientTls(TlsMode.Prefer, caFile: pki.CaFile), AuthType.Hba, """
            hostssl    all  all  127.0.0.1/32  cert
            hostnossl  all  all  127.0.0.1/32  reject
            """);

        var good = Client(proxy, SslMode.Require);
        (good.SslCertificate, good.SslKey) = pki.Client("app");
        Assert.Equal("app", await ScalarAsync(good));
        await AssertFailsAsync(Client(proxy, SslMode.Require), PostgresErrorCodes.InvalidAuthorizationSpecification, "connection requires a valid client certificate");
    }
}
