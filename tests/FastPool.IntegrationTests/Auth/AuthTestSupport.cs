using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Configuration.Hba;
using Npgsql;

namespace FastPool.IntegrationTests.Auth;

/// <summary>
/// Helpers for the auth tests. They run on the shared "postgres" fixture, whose primary already has one role per
/// server-side method over TCP: <see cref="PostgresFixture.AppUser"/> (trust), <see cref="PostgresFixture.PasswordUser"/>
/// (password, i.e. cleartext), <see cref="PostgresFixture.Md5User"/> (md5) and <see cref="PostgresFixture.ScramUser"/>
/// (scram-sha-256).
/// </summary>
internal static class AuthTestSupport
{
    public const string Database = PostgresFixture.AppDatabase;

    public static string PasswordOf(string user) => user switch
    {
        PostgresFixture.AppUser => PostgresFixture.AppPassword,
        PostgresFixture.Md5User => PostgresFixture.Md5Password,
        PostgresFixture.ScramUser => PostgresFixture.ScramPassword,
        PostgresFixture.PasswordUser => PostgresFixture.PasswordUserPassword,
        _ => throw new ArgumentOutOfRangeException(nameof(user)),
    };

    /// <summary>Rules parsed as the loader would; the test fails on any parse error.</summary>
    public static HbaRules Hba(string text)
    {
        var errors = new List<ConfigDiagnostic>();
        var rules = HbaParser.Parse(text, "/test/pg_hba.conf", errors);
        Assert.Empty(errors);
        return rules;
    }

    public static ProxyHost StartProxy(PostgresFixture fixture, AuthType authType, IReadOnlyDictionary<string, string> authFile, string? hba = null, Func<ProxyConfig, ProxyConfig>? more = null) =>
        ProxyHost.Start(fixture.Primary, c =>
        {
            c = c with
            {
                AuthType = authType,
                AuthFileUsers = new Dictionary<string, string>(authFile, StringComparer.Ordinal),
                HbaRules = hba is null ? null : Hba(hba),
            };
            return more is null ? c : more(c);
        });

    /// <summary>Logs in through the proxy with Npgsql and returns current_user.</summary>
    public static async Task<string> CurrentUserAsync(ProxyHost proxy, string user, string? password, string database = Database)
    {
        await using var conn = new NpgsqlConnection(proxy.ConnectionString(database, user, password));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("select current_user", conn);
        return (string)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>Asserts that the login fails with the server-style error a user would see.</summary>
    public static async Task<PostgresException> AssertLoginFailsAsync(ProxyHost proxy, string user, string? password, string sqlState, string message, string database = Database)
    {
        await using var conn = new NpgsqlConnection(proxy.ConnectionString(database, user, password));
        var ex = await Assert.ThrowsAsync<PostgresException>(() => conn.OpenAsync());
        Assert.Equal(sqlState, ex.SqlState);
        Assert.Equal(message, ex.MessageText);
        return ex;
    }

    public static Task<PostgresException> AssertPasswordFailureAsync(ProxyHost proxy, string user, string? password, string database = Database) =>
        AssertLoginFailsAsync(proxy, user, password, PostgresErrorCodes.InvalidPassword, $"password authentication failed for user \"{user}\"", database);

    /// <summary>psql through the proxy in plaintext, as one login attempt (psql tries once, Npgsql may retry).</summary>
    public static Task<ToolResult> PsqlAsync(ProxyHost proxy, string user, string password, string sql) =>
        ProtocolTestSupport.RunToolAsync(
            "psql",
            ["-X", "-Atc", sql, $"host=127.0.0.1 port={proxy.Port} dbname={Database} user={user} password={password} sslmode=disable gssencmode=disable"],
            TimeSpan.FromSeconds(60));

    /// <summary>The secret PostgreSQL stores for a role (SCRAM-SHA-256$... or md5...), for auth_file entries.</summary>
    public static Task<string> StoredSecretAsync(PostgresFixture fixture, string role) =>
        fixture.Primary.PsqlAsync($"select rolpassword from pg_authid where rolname = '{role}'");
}
