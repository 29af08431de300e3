using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using FastPool.Proxy.Configuration;
using static FastPool.IntegrationTests.Auth.AuthTestSupport;

namespace FastPool.IntegrationTests.Auth;

/// <summary>
/// Client auth_type {plain, md5, scram-sha-256, hba} x server method {trust, password, md5, scram-sha-256}, with
/// Npgsql: the right password gets rows, a wrong password and an unknown user get the same 28P01; trust against
/// every server method (any: <see cref="TrustAndAnyTests"/>); psql for the password methods.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PasswordMatrixTests
{
    private readonly PostgresFixture _fixture;

    public PasswordMatrixTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    /// <summary>One user per server-side method: trust, password (cleartext), md5, scram-sha-256.</summary>
    private static readonly string[] AllServerMethods = [PostgresFixture.AppUser, PostgresFixture.PasswordUser, PostgresFixture.Md5User, PostgresFixture.ScramUser];

    public static TheoryData<AuthType, string> Matrix()
    {
        var data = new TheoryData<AuthType, string>();
        foreach (var authType in new[] { AuthType.Plain, AuthType.Md5, AuthType.ScramSha256, AuthType.Hba })
        {
            foreach (var user in AllServerMethods)
            {
                data.Add(authType, user);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task PlainSecret_RightPasswordGetsRows_WrongPasswordAndUnknownUserGetTheSame28P01(AuthType authType, string user)
    {
        // The auth_file's plain password serves both sides: it checks the client and logs in to the server.
        await using var proxy = StartProxy(_fixture, authType, new Dictionary<string, string> { [user] = PasswordOf(user) },
            hba: "host all all 127.0.0.1/32 scram-sha-256");

        Assert.Equal(user, await CurrentUserAsync(proxy, user, PasswordOf(user)));
        await AssertPasswordFailureAsync(proxy, user, "wrong-" + PasswordOf(user));
        await AssertPasswordFailureAsync(proxy, "no_such_user", "whatever");
    }

    [Fact]
    public async Task Trust_NoPasswordAsked_EveryServerMethodAnsweredFromTheAuthFile()
    {
        // The client sends no password at all; FastPool answers each server's method with the auth_file's password.
        var users = AllServerMethods.ToDictionary(u => u, PasswordOf);
        await using var proxy = StartProxy(_fixture, AuthType.Trust, users);
        foreach (var user in AllServerMethods)
        {
            Assert.Equal(user, await CurrentUserAsync(proxy, user, null));
            var psql = await PsqlAsync(proxy, user, string.Empty, "select current_user");
            Assert.True(psql.ExitCode == 0, psql.ToString());
            Assert.Equal(user, psql.StandardOutput.Trim());
        }
    }

    [Theory]
    [InlineData(AuthType.ScramSha256)]
    [InlineData(AuthType.Md5)]
    [InlineData(AuthType.Plain)]
    public async Task PostgresScramSecretInAuthFile_ChecksTheClient_AndDatabasePasswordLogsIn(AuthType authType)
    {
        // The secret exactly as PostgreSQL stores it; under md5 the client is asked for SCRAM instead.
        var user = PostgresFixture.ScramUser;
        var secret = await StoredSecretAsync(_fixture, user);
        Assert.StartsWith("SCRAM-SHA-256$", secret, StringComparison.Ordinal);
        await using var proxy = StartProxy(_fixture, authType, new Dictionary<string, string> { [user] = secret },
            more: c => c with { FallbackDatabase = c.FallbackDatabase! with { Password = PostgresFixture.ScramPassword } });

        Assert.Equal(user, await CurrentUserAsync(proxy, user, PostgresFixture.ScramPassword));
        await AssertPasswordFailureAsync(proxy, user, "wrong");
        await AssertPasswordFailureAsync(proxy, "no_such_user", PostgresFixture.ScramPassword);
    }

    [Theory]
    [InlineData(AuthType.Md5)]
    [InlineData(AuthType.Plain)]
    public async Task PostgresMd5SecretInAuthFile_ChecksTheClient(AuthType authType)
    {
        var user = PostgresFixture.Md5User;
        var secret = await StoredSecretAsync(_fixture, user);
        Assert.StartsWith("md5", secret, StringComparison.Ordinal);
        await using var proxy = StartProxy(_fixture, authType, new Dictionary<string, string> { [user] = secret },
            more: c => c with { FallbackDatabase = c.FallbackDatabase! with { Password = PostgresFixture.Md5Password } });

        Assert.Equal(user, await CurrentUserAsync(proxy, user, PostgresFixture.Md5Password));
        await AssertPasswordFailureAsync(proxy, user, "wrong");
    }

    [Fact]
    public async Task Md5SecretUnderScram_FailsLikeAWrongPassword()
    {
        // SCRAM cannot be checked against an md5 secret: PostgreSQL runs a mock exchange and fails it; so does FastPool.
        var user = PostgresFixture.Md5User;
        var secret = await StoredSecretAsync(_fixture, user);
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string> { [user] = secret });

        await AssertPasswordFailureAsync(proxy, user, PostgresFixture.Md5Password);
    }

    [Fact]
    public async Task ServerRejectsTheConfiguredPassword_ClientSeesTheServersError()
    {
        // FastPool accepts the client (its auth_file says so) but PostgreSQL refuses FastPool's SCRAM login.
        var user = PostgresFixture.ScramUser;
        await using var proxy = StartProxy(_fixture, AuthType.Trust, new Dictionary<string, string> { [user] = "not-the-server-password" });

        await AssertPasswordFailureAsync(proxy, user, null);
    }

    [Fact]
    public async Task Psql_LogsInWithEveryPasswordMethod_AndSeesTheErrorForAWrongPassword()
    {
        var users = new Dictionary<string, string>
        {
            [PostgresFixture.ScramUser] = PostgresFixture.ScramPassword,
            [PostgresFixture.Md5User] = PostgresFixture.Md5Password,
            [PostgresFixture.PasswordUser] = PostgresFixture.PasswordUserPassword,
        };
        foreach (var authType in new[] { AuthType.ScramSha256, AuthType.Md5, AuthType.Plain })
        {
            await using var proxy = StartProxy(_fixture, authType, users);
            foreach (var (user, password) in users)
            {
                var ok = await PsqlAsync(proxy, user, password, "select current_user");
                Assert.True(ok.ExitCode == 0, ok.ToString());
                Assert.Equal(user, ok.StandardOutput.Trim());

                var bad = await PsqlAsync(proxy, user, "wrong", "select 1");
                Assert.Equal(2, bad.ExitCode);
                Assert.Contains($"password authentication failed for user \"{user}\"", bad.StandardError, StringComparison.Ordinal);
            }
        }
    }
}
