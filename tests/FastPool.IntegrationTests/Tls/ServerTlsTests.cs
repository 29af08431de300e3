using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using Npgsql;

namespace FastPool.IntegrationTests.Tls;

/// <summary>server_tls_sslmode against a PostgreSQL with ssl = on: TLS to the server, its certificate checks, SCRAM-SHA-256-PLUS.</summary>
[Collection(TlsPostgresCollection.Name)]
public sealed class ServerTlsTests
{
    private readonly TlsPostgresFixture _fixture;

    public ServerTlsTests(TlsPostgresFixture fixture)
    {
        _fixture = fixture;
    }

    /// <summary>A proxy letting anyone in (auth_type = any) whose one database logs in to the TLS server as the SCRAM user, over host.</summary>
    private ProxyHost Start(TlsMode mode, string host = "127.0.0.1", string? caFile = null) =>
        ProxyHost.Start(_fixture.Cluster, c => c with
        {
            AuthType = AuthType.Any,
            ServerTls = new TlsSettings { Mode = mode, CaFile = caFile ?? TestPki.Shared.CaFile },
            Databases =
            [
                new DatabaseConfig
                {
                    Name = "tlsdb",
                    DbName = "postgres",
                    User = TlsPostgresFixture.ScramUser,
                    Password = TlsPostgresFixture.ScramPassword,
                    Nodes = [new NodeEndpoint(host, _fixture.Cluster.Port)],
                },
            ],
        });

    private static async Task<object?> ScalarAsync(ProxyHost proxy, string sql)
    {
        await using var conn = new NpgsqlConnection(proxy.ConnectionString("tlsdb", "anyone"));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync();
    }

    private static async Task<PostgresException> AssertFailsAsync(ProxyHost proxy)
    {
        await using var conn = new NpgsqlConnection(proxy.ConnectionString("tlsdb", "anyone"));
        return await Assert.ThrowsAsync<PostgresException>(() => conn.OpenAsync());
    }

    private const string SslOfMyBackend = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";

    [Theory]
    [InlineData(TlsMode.Allow)]
    [InlineData(TlsMode.Prefer)]
    [InlineData(TlsMode.Require)]
    [InlineData(TlsMode.VerifyCa)]
    [InlineData(TlsMode.VerifyFull)]
    public async Task TlsModes_LogInOverTls_WithScramSha256Plus(TlsMode mode)
    {
        await using var proxy = Start(mode);

        Assert.Equal(true, await ScalarAsync(proxy, SslOfMyBackend));
        Assert.Equal(TlsPostgresFixture.ScramUser, await ScalarAsync(proxy, "select current_user"));

        // Only a correct tls-server-end-point binding gets past the server's check, so this line proves it.
        Assert.Contains(proxy.Logs, line => line.Contains("new server connection", StringComparison.Ordinal) && line.Contains("SCRAM-SHA-256-PLUS)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ScramPassthrough_OverTls_BindsTheChannel_WithOnlyTheScramSecretStored()
    {
        // No password anywhere: the auth_file holds the secret from pg_authid, the client's proof gives the keys.
        var user = TlsPostgresFixture.ScramUser;
        var secret = await _fixture.Cluster.PsqlAsync($"select rolpassword from pg_authid where rolname = '{user}'");
        await using var proxy = ProxyHost.Start(_fixture.Cluster, c => c with
        {
            AuthType = AuthType.ScramSha256,
            AuthFileUsers = new Dictionary<string, string> { [user] = secret },
            ServerTls = new TlsSettings { Mode = TlsMode.VerifyFull, CaFile = TestPki.Shared.CaFile },
            Databases = [new DatabaseConfig { Name = "tlsdb", DbName = "postgres", Nodes = [new NodeEndpoint("127.0.0.1", _fixture.Cluster.Port)] }],
        });

        await using var conn = new NpgsqlConnection(proxy.ConnectionString("tlsdb", user, TlsPostgresFixture.ScramPassword));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(SslOfMyBackend, conn);
        Assert.Equal(true, await cmd.ExecuteScalarAsync());
        Assert.Contains(proxy.Logs, line => line.Contains("new server connection", StringComparison.Ordinal) && line.Contains("SCRAM-SHA-256-PLUS passthrough)", StringComparison.Ordinal));
        Assert.DoesNotContain(proxy.Logs, line => line.Contains(secret, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Disable_IsPlaintext_WhichTheServerRejectsForThisUser()
    {
        await using var proxy = Start(TlsMode.Disable);
        var ex = await AssertFailsAsync(proxy);
        Assert.Equal(PostgresErrorCodes.InvalidAuthorizationSpecification, ex.SqlState);
        Assert.Contains("no encryption", ex.MessageText);
    }

    [Fact]
    public async Task VerifyFull_WrongHostName_Fails_VerifyCaPasses()
    {
        // 127.0.0.2 reaches the same server, but its certificate names only 127.0.0.1 and localhost.
        await using (var proxy = Start(TlsMode.VerifyFull, host: "127.0.0.2"))
        {
            var ex = await AssertFailsAsync(proxy);
            Assert.Equal("08001", ex.SqlState);
            Assert.Contains("TLS handshake failed", ex.MessageText);
        }

        await using (var proxy = Start(TlsMode.VerifyCa, host: "127.0.0.2"))
        {
            Assert.Equal(true, await ScalarAsync(proxy, SslOfMyBackend));
        }
    }

    [Fact]
    public async Task VerifyCa_CertificateFromAnotherCa_Fails_RequireDoesNotCheck()
    {
        await using (var proxy = Start(TlsMode.VerifyCa, caFile: TestPki.Shared.OtherCaFile))
        {
            var ex = await AssertFailsAsync(proxy);
            Assert.Equal("08001", ex.SqlState);
            Assert.Contains("TLS handshake failed", ex.MessageText);
        }

        await using (var proxy = Start(TlsMode.Require, caFile: TestPki.Shared.OtherCaFile))
        {
            Assert.Equal(true, await ScalarAsync(proxy, SslOfMyBackend));
        }
    }
}

/// <summary>server_tls_sslmode against the shared plaintext server: prefer falls back, require refuses.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ServerTlsPlaintextServerTests
{
    private readonly PostgresFixture _fixture;

    public ServerTlsPlaintextServerTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Prefer_FallsBackToPlaintext_RequireFails()
    {
        await using (var proxy = ProxyHost.Start(_fixture.Primary, c => c with { ServerTls = new TlsSettings { Mode = TlsMode.Prefer } }))
        {
            await using var conn = await proxy.OpenAsync(PostgresFixture.AppDatabase, PostgresFixture.AppUser);
            await using var cmd = new NpgsqlCommand("select 1", conn);
            Assert.Equal(1, await cmd.ExecuteScalarAsync());
        }

        await using (var proxy = ProxyHost.Start(_fixture.Primary, c => c with { ServerTls = new TlsSettings { Mode = TlsMode.Require } }))
        {
            await using var conn = new NpgsqlConnection(proxy.ConnectionString(PostgresFixture.AppDatabase, PostgresFixture.AppUser));
            var ex = await Assert.ThrowsAsync<PostgresException>(() => conn.OpenAsync());
            Assert.Equal("08001", ex.SqlState);
            Assert.Contains("does not support SSL, but server_tls_sslmode = require requires it", ex.MessageText);
        }
    }
}
