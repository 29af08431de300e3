using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Auth.AuthTestSupport;

namespace FastPool.IntegrationTests.Auth;

/// <summary>
/// auth_query: users not in the auth_file are looked up on the server as auth_user, through a SECURITY DEFINER
/// function (as PgBouncer's docs recommend) or the default pg_shadow query as a superuser. The auth_file holds only
/// auth_user's password; the md5 user's server login uses the md5 secret the query returned.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class AuthQueryTests
{
    public const string AuthUserPassword = "fp_auth_lookup_pw";
    public const string LookupQuery = "SELECT usename, passwd FROM public.fp_user_lookup($1)";

    private readonly PostgresFixture _fixture;

    public AuthQueryTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    /// <summary>
    /// Creates auth_user (a plain LOGIN role) and the lookup function, owned by the superuser and executable by
    /// auth_user only. Idempotent: every test calls it.
    /// </summary>
    internal static async Task CreateLookupFunctionAsync(PostgresFixture fixture)
    {
        var user = PostgresFixture.AuthQueryUser;
        await fixture.Primary.PsqlAsync(
            $"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN CREATE ROLE {user} LOGIN; END IF; END $$; "
            + $"ALTER ROLE {user} PASSWORD '{AuthUserPassword}'");
        await fixture.Primary.PsqlAsync(
            "CREATE OR REPLACE FUNCTION public.fp_user_lookup(p_user text, OUT usename name, OUT passwd text) RETURNS SETOF record "
            + "LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog "
            + "AS $$ SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = p_user $$; "
            + "REVOKE ALL ON FUNCTION public.fp_user_lookup(text) FROM PUBLIC; "
            + $"GRANT EXECUTE ON FUNCTION public.fp_user_lookup(text) TO {user}",
            Database);
    }

    /// <summary>A proxy whose auth_file has only auth_user (plain password), looking other users up with the function.</summary>
    internal static ProxyHost StartWithFunction(PostgresFixture fixture, AuthType authType, Func<ProxyConfig, ProxyConfig>? more = null) =>
        StartProxy(fixture, authType, new Dictionary<string, string> { [PostgresFixture.AuthQueryUser] = AuthUserPassword }, more: c =>
        {
            c = c with { AuthUser = PostgresFixture.AuthQueryUser, AuthQuery = LookupQuery };
            return more is null ? c : more(c);
        });

    [Fact]
    public async Task SecurityDefinerFunction_Md5UserLogsIn_AndItsServerLoginUsesTheReturnedMd5Secret()
    {
        await CreateLookupFunctionAsync(_fixture);
        await using var proxy = StartWithFunction(_fixture, AuthType.Md5);

        // Twice: the second login is served from the cache, and the pooled server is reused or reopened alike.
        Assert.Equal(PostgresFixture.Md5User, await CurrentUserAsync(proxy, PostgresFixture.Md5User, PostgresFixture.Md5Password));
        Assert.Equal(PostgresFixture.Md5User, await CurrentUserAsync(proxy, PostgresFixture.Md5User, PostgresFixture.Md5Password));
        await AssertPasswordFailureAsync(proxy, PostgresFixture.Md5User, "wrong");
    }

    [Theory]
    [InlineData(AuthType.ScramSha256)]
    [InlineData(AuthType.Md5)]
    [InlineData(AuthType.Plain)]
    public async Task SecurityDefinerFunction_ScramSecretChecksTheClient(AuthType authType)
    {
        // The server login here uses the entry's password, so only the client side of auth_query is under test.
        await CreateLookupFunctionAsync(_fixture);
        await using var proxy = StartWithFunction(_fixture, authType,
            c => c with { Databases = [new DatabaseConfig { Name = Database, Nodes = c.FallbackDatabase!.Nodes, User = PostgresFixture.ScramUser, Password = PostgresFixture.ScramPassword }] });

        Assert.Equal(PostgresFixture.ScramUser, await CurrentUserAsync(proxy, PostgresFixture.ScramUser, PostgresFixture.ScramPassword));
        await AssertPasswordFailureAsync(proxy, PostgresFixture.ScramUser, "wrong");
    }

    [Fact]
    public async Task DefaultQuery_WithSuperuserAuthUser_LogsInTheMd5User_ButNotAnExpiredOrNoLoginRole()
    {
        const string expired = "fp_aq_expired";
        const string nologin = "fp_aq_nologin";
        await _fixture.Primary.PsqlAsync(
            $"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{expired}') THEN CREATE ROLE {expired} LOGIN; END IF; "
            + $"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{nologin}') THEN CREATE ROLE {nologin} NOLOGIN; END IF; END $$; "
            + $"SET password_encryption = 'md5'; ALTER ROLE {expired} PASSWORD 'secret' VALID UNTIL '2001-01-01'; ALTER ROLE {nologin} PASSWORD 'secret'");

        // No auth_file at all: the superuser is trusted by the server, and auth_query is PgBouncer 1.18's default.
        await using var proxy = StartProxy(_fixture, AuthType.Md5, new Dictionary<string, string>(), more: c => c with { AuthUser = "postgres" });
        Assert.Equal(
            "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin",
            proxy.Config.AuthQuery);

        Assert.Equal(PostgresFixture.Md5User, await CurrentUserAsync(proxy, PostgresFixture.Md5User, PostgresFixture.Md5Password));

        // The right password, but the password has expired / the role may not log in: the query gives no secret.
        await AssertPasswordFailureAsync(proxy, expired, "secret");
        await AssertPasswordFailureAsync(proxy, nologin, "secret");
    }

    [Theory]
    [InlineData(AuthType.ScramSha256)]
    [InlineData(AuthType.Md5)]
    [InlineData(AuthType.Plain)]
    public async Task WrongPasswordAndUnknownUser_GetTheSame28P01(AuthType authType)
    {
        await CreateLookupFunctionAsync(_fixture);
        await using var proxy = StartWithFunction(_fixture, authType);

        var wrong = await AssertPasswordFailureAsync(proxy, PostgresFixture.ScramUser, "wrong");
        var unknown = await AssertPasswordFailureAsync(proxy, "fp_no_such_user", "wrong");
        Assert.Equal(wrong.SqlState, unknown.SqlState);
        Assert.Equal(wrong.Severity, unknown.Severity);
        Assert.Equal(wrong.MessageText.Replace(PostgresFixture.ScramUser, "U"), unknown.MessageText.Replace("fp_no_such_user", "U"));
    }

    [Fact]
    public async Task ParameterIsNeverSplicedIntoTheQuery()
    {
        // A user name that would end the string literal if it were concatenated: it is just an unknown user.
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string>(), more: c => c with { AuthUser = "postgres" });

        await AssertPasswordFailureAsync(proxy, "x' OR usename = 'scram_user", PostgresFixture.ScramPassword);
    }

    [Fact]
    public async Task FailedLogin_DropsTheCachedSecret_SoANewPasswordWorksAtOnce()
    {
        // A role of its own (the server trusts it): changing its password must not disturb other tests.
        const string user = "fp_aq_rotate";
        await CreateLookupFunctionAsync(_fixture);
        await _fixture.Primary.PsqlAsync(
            $"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN CREATE ROLE {user} LOGIN; END IF; END $$; ALTER ROLE {user} PASSWORD 'one'");
        await using var proxy = StartWithFunction(_fixture, AuthType.ScramSha256,
            c => c with { FastPool = c.FastPool with { AuthQueryCacheTtl = TimeSpan.FromHours(1) } });

        Assert.Equal(user, await CurrentUserAsync(proxy, user, "one"));
        await _fixture.Primary.PsqlAsync($"ALTER ROLE {user} PASSWORD 'two'");

        // The cache still holds the old secret: the new password fails once, which drops it; then it works.
        // psql, because it tries exactly once (Npgsql may reconnect after a failure, which would hide the first one).
        var first = await PsqlAsync(proxy, user, "two", "select current_user");
        Assert.Equal(2, first.ExitCode);
        Assert.Contains($"password authentication failed for user \"{user}\"", first.StandardError, StringComparison.Ordinal);
        var second = await PsqlAsync(proxy, user, "two", "select current_user");
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Equal(user, second.StandardOutput.Trim());
        await AssertPasswordFailureAsync(proxy, user, "one");
    }

    [Fact]
    public async Task AuthUserRefusedByTheServer_ClientGetsAnErrorThatNamesNoUser_AndTheLogSaysWhy()
    {
        await CreateLookupFunctionAsync(_fixture);
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string> { [PostgresFixture.AuthQueryUser] = "not-its-password" },
            more: c => c with { AuthUser = PostgresFixture.AuthQueryUser, AuthQuery = LookupQuery });

        await AssertLoginFailsAsync(proxy, PostgresFixture.ScramUser, PostgresFixture.ScramPassword, PostgresErrorCodes.InvalidAuthorizationSpecification,
            "authentication failed: could not look up the user with auth_query");
        Assert.Contains(proxy.Logs, l => l.Contains("auth_query as fp_auth_lookup gave no answer", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Lookups_ShareOnePooledServerConnection_AndSurviveItsTermination()
    {
        // No cache: every login asks the server. PgBouncer keeps auth_user's connection between lookups; so does
        // FastPool, so five lookups are one server login for auth_user, not five.
        await CreateLookupFunctionAsync(_fixture);
        await using var proxy = StartWithFunction(_fixture, AuthType.Md5,
            c => c with { FastPool = c.FastPool with { AuthQueryCacheTtl = TimeSpan.Zero } });
        var before = await AuthUserBackendsAsync();

        Assert.Equal(PostgresFixture.Md5User, await CurrentUserAsync(proxy, PostgresFixture.Md5User, PostgresFixture.Md5Password));
        Assert.Equal(PostgresFixture.Md5User, await CurrentUserAsync(proxy, PostgresFixture.Md5User, PostgresFixture.Md5Password));
        await AssertPasswordFailureAsync(proxy, PostgresFixture.ScramUser, "wrong");
        await AssertPasswordFailureAsync(proxy, "fp_no_such_user", "wrong");
        Assert.Equal(PostgresFixture.Md5User, await CurrentUserAsync(proxy, PostgresFixture.Md5User, PostgresFixture.Md5Password));

        var used = (await AuthUserBackendsAsync()).Except(before).ToList();
        var pid = Assert.Single(used);

        // The server ends the idle lookup connection: the next lookup notices and asks on a new one; the client
        // never sees the lost connection.
        await _fixture.Primary.PsqlAsync($"select pg_terminate_backend({pid}, 5000)");
        Assert.Equal(PostgresFixture.Md5User, await CurrentUserAsync(proxy, PostgresFixture.Md5User, PostgresFixture.Md5Password));
        var now = (await AuthUserBackendsAsync()).Except(before).ToList();
        Assert.DoesNotContain(pid, now);
        Assert.Single(now);
    }

    /// <summary>The pids of auth_user's backends on the server right now.</summary>
    private async Task<List<string>> AuthUserBackendsAsync()
    {
        var text = await _fixture.Primary.PsqlAsync($"select pid from pg_stat_activity where usename = '{PostgresFixture.AuthQueryUser}'");
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
    }

    [Fact]
    public async Task AdminConsole_UsesAuthQuery_OnTheEntryAuthDbnameNames()
    {
        // As in PgBouncer: the console has no server of its own, so auth_dbname names the [databases] entry whose
        // server is asked. md5_user is an admin user known only to the server.
        await CreateLookupFunctionAsync(_fixture);
        await using (var proxy = StartWithFunction(_fixture, AuthType.Md5, c => c with { AuthDbName = Database, AdminUsers = [PostgresFixture.Md5User] }))
        {
            var ok = await ConsolePsqlAsync(proxy, PostgresFixture.Md5User, PostgresFixture.Md5Password, "SHOW VERSION");
            Assert.True(ok.ExitCode == 0, ok.ToString());
            Assert.Contains("FastPool", ok.StandardOutput, StringComparison.Ordinal);

            var wrong = await ConsolePsqlAsync(proxy, PostgresFixture.Md5User, "wrong", "SHOW VERSION");
            Assert.Equal(2, wrong.ExitCode);
            Assert.Contains($"password authentication failed for user \"{PostgresFixture.Md5User}\"", wrong.StandardError, StringComparison.Ordinal);
        }

        // Without auth_dbname the console knows only the auth_file: md5_user is an unknown user there.
        await using (var proxy = StartWithFunction(_fixture, AuthType.Md5, c => c with { AdminUsers = [PostgresFixture.Md5User] }))
        {
            var unknown = await ConsolePsqlAsync(proxy, PostgresFixture.Md5User, PostgresFixture.Md5Password, "SHOW VERSION");
            Assert.Equal(2, unknown.ExitCode);
            Assert.Contains($"password authentication failed for user \"{PostgresFixture.Md5User}\"", unknown.StandardError, StringComparison.Ordinal);
        }
    }

    private static Task<ToolResult> ConsolePsqlAsync(ProxyHost proxy, string user, string password, string sql) =>
        ProtocolTestSupport.RunToolAsync(
            "psql",
            ["-X", "-Atc", sql, $"host=127.0.0.1 port={proxy.Port} dbname=pgbouncer user={user} password={password} sslmode=disable gssencmode=disable"],
            TimeSpan.FromSeconds(60));

    [Fact]
    public async Task Logs_NeverContainTheSecretsAuthQueryReturned()
    {
        await CreateLookupFunctionAsync(_fixture);
        await using (var proxy = StartWithFunction(_fixture, AuthType.Md5))
        {
            Assert.Equal(PostgresFixture.Md5User, await CurrentUserAsync(proxy, PostgresFixture.Md5User, PostgresFixture.Md5Password));
            await AssertPasswordFailureAsync(proxy, PostgresFixture.ScramUser, "wrong");
            await AssertPasswordFailureAsync(proxy, "fp_no_such_user", "wrong");

            var secrets = new[]
            {
                await StoredSecretAsync(_fixture, PostgresFixture.Md5User),
                await StoredSecretAsync(_fixture, PostgresFixture.ScramUser),
                PostgresFixture.Md5Password,
                AuthUserPassword,
            };
            foreach (var secret in secrets)
            {
                Assert.DoesNotContain(proxy.Logs, l => l.Contains(secret, StringComparison.Ordinal));
            }
        }
    }
}
