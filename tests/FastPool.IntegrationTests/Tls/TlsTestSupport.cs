using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using FastPool.Proxy.Configuration;
using Npgsql;

namespace FastPool.IntegrationTests.Tls;

/// <summary>Proxies with client TLS and clients (Npgsql, psql) that use it, for the TLS tests.</summary>
internal static class TlsTestSupport
{
    public const string Database = PostgresFixture.AppDatabase;

    /// <summary>client_tls_* with the shared test server certificate (or the one given).</summary>
    public static TlsSettings ClientTls(TlsMode mode, (string Cert, string Key)? certificate = null, string? caFile = null)
    {
        var (cert, key) = certificate ?? TestPki.Shared.Server;
        return new TlsSettings { Mode = mode, CertFile = cert, KeyFile = key, CaFile = caFile };
    }

    public static NpgsqlConnectionStringBuilder Client(ProxyHost proxy, SslMode sslMode, string user = PostgresFixture.AppUser, string? password = null, string database = Database)
    {
        var b = new NpgsqlConnectionStringBuilder(proxy.ConnectionString(database, user, password)) { SslMode = sslMode };
        if (sslMode is SslMode.VerifyCA or SslMode.VerifyFull)
        {
            b.RootCertificate = TestPki.Shared.CaFile;
        }

        return b;
    }

    /// <summary>Opens, runs <paramref name="sql"/>, returns the single value.</summary>
    public static async Task<object?> ScalarAsync(NpgsqlConnectionStringBuilder b, string sql = "select current_user")
    {
        await using var conn = new NpgsqlConnection(b.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync();
    }

    public static async Task<PostgresException> AssertFailsAsync(NpgsqlConnectionStringBuilder b, string sqlState, string message)
    {
        await using var conn = new NpgsqlConnection(b.ConnectionString);
        var ex = await Assert.ThrowsAsync<PostgresException>(() => conn.OpenAsync());
        Assert.Equal(sqlState, ex.SqlState);
        Assert.Equal(message, ex.MessageText);
        return ex;
    }

    /// <summary>psql through the proxy with libpq's sslmode (and the test CA as sslrootcert for verify-*).</summary>
    public static Task<ToolResult> PsqlAsync(ProxyHost proxy, string sslMode, string sql, string user = PostgresFixture.AppUser, string extra = "")
    {
        var conninfo = $"host=127.0.0.1 port={proxy.Port} dbname={Database} user={user} sslmode={sslMode} sslrootcert={TestPki.Shared.CaFile} {extra}";
        return ProtocolTestSupport.RunToolAsync("psql", ["-X", "-Atc", sql, conninfo], TimeSpan.FromSeconds(60));
    }
}
