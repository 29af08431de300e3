using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Auth.AuthTestSupport;

namespace FastPool.IntegrationTests.Auth;

/// <summary>
/// auth_type = trust and any with PgBouncer's meaning: trust asks no password but lets in only users it knows (the
/// auth_file, [users], auth_query); any lets in every name as the database entry's user=. The error texts and
/// SQLSTATEs are those PgBouncer 1.18 sends in the same cases.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class TrustAndAnyTests
{
    private const string TrustFailed = "\"trust\" authentication failed";

    private readonly PostgresFixture _fixture;

    public TrustAndAnyTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Theory]
    [InlineData(AuthType.Trust)]
    [InlineData(AuthType.Hba)]
    public async Task Trust_LetsInUsersOfTheAuthFileAndUsersSection_OthersGet08P01(AuthType authType)
    {
        // An empty secret is enough to be known; so is a [users] entry. Under hba, a trust rule means the same.
        await using var proxy = StartProxy(_fixture, authType, new Dictionary<string, string> { [PostgresFixture.AppUser] = string.Empty },
            hba: "host all all 127.0.0.1/32 trust",
            more: c => c with { Users = new Dictionary<string, UserConfig> { ["postgres"] = new() { Name = "postgres" } } });

        Assert.Equal(PostgresFixture.AppUser, await CurrentUserAsync(proxy, PostgresFixture.AppUser, null));
        Assert.Equal("postgres", await CurrentUserAsync(proxy, "postgres", null));

        // A role the server has (and trusts) but FastPool does not know, and a role nobody has: the same answer.
        await AssertLoginFailsAsync(proxy, PostgresFixture.PasswordUser, null, PostgresErrorCodes.ProtocolViolation, TrustFailed);
        await AssertLoginFailsAsync(proxy, "fp_nobody", null, PostgresErrorCodes.ProtocolViolation, TrustFailed);
        var psql = await PsqlAsync(proxy, "fp_nobody", string.Empty, "select 1");
        Assert.NotEqual(0, psql.ExitCode);
        Assert.Contains("FATAL:  " + TrustFailed, psql.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Trust_WithAuthQuery_LetsInUsersTheServerHas_AndAnswersNoSuchUserOtherwise()
    {
        const string late = "fp_trust_late";
        await AuthQueryTests.CreateLookupFunctionAsync(_fixture);
        await _fixture.Primary.PsqlAsync($"DROP ROLE IF EXISTS {late}");
        await using var proxy = AuthQueryTests.StartWithFunction(_fixture, AuthType.Trust,
            c => c with { FastPool = c.FastPool with { AuthQueryCacheTtl = TimeSpan.FromHours(1) } });

        // md5_user is not in the auth_file: auth_query finds it, and its md5 secret answers the server's md5 challenge.
        Assert.Equal(PostgresFixture.Md5User, await CurrentUserAsync(proxy, PostgresFixture.Md5User, null));

        // postgres has no password (pg_shadow gives NULL): it exists, so trust lets it in.
        Assert.Equal("postgres", await CurrentUserAsync(proxy, "postgres", null));

        await AssertLoginFailsAsync(proxy, "fp_no_such_user", null, PostgresErrorCodes.ProtocolViolation, "no such user");

        // "No such user" is not kept (whatever the cache TTL): a role created afterwards gets in at once.
        await AssertLoginFailsAsync(proxy, late, null, PostgresErrorCodes.ProtocolViolation, "no such user");
        await _fixture.Primary.PsqlAsync($"CREATE ROLE {late} LOGIN");
        Assert.Equal(late, await CurrentUserAsync(proxy, late, null));
    }

    [Fact]
    public async Task Any_LetsEveryNameInAsTheEntrysUser_AndAnEntryWithoutUserIsAConfigError()
    {
        await using var proxy = StartProxy(_fixture, AuthType.Any, new Dictionary<string, string>(), more: c => c with
        {
            Databases = [new DatabaseConfig { Name = Database, Nodes = c.FallbackDatabase!.Nodes, User = PostgresFixture.AppUser }],
        });

        // The name sent is ignored: whoever it names, the session is the entry's user, on the server and in FastPool.
        Assert.Equal(PostgresFixture.AppUser, await CurrentUserAsync(proxy, "whoever", null));
        await using (var conn = await proxy.OpenAsync(Database, "someone_else"))
        {
            var clients = await Admin.AdminSupport.ShowAsync(proxy.Port, "SHOW CLIENTS", user: "anybody");
            Assert.Contains(clients.Rows, r => clients.Value(r, "user") == PostgresFixture.AppUser && clients.Value(r, "database") == Database);
            Assert.DoesNotContain(clients.Rows, r => clients.Value(r, "user") == "someone_else");
        }

        // The "*" entry has no user=: PgBouncer's answer, and the log says what to fix.
        await AssertLoginFailsAsync(proxy, "whoever", null, PostgresErrorCodes.ProtocolViolation, "bouncer config error", "postgres");
        Assert.Contains(proxy.Logs, l => l.Contains("auth_type = any needs user=", StringComparison.Ordinal));
    }
}
