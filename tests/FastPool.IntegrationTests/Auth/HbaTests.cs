using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Auth.AuthTestSupport;

namespace FastPool.IntegrationTests.Auth;

/// <summary>auth_type = hba: the first matching auth_hba_file line decides, per database, user, address and socket type.</summary>
[Collection(PostgresCollection.Name)]
public sealed class HbaTests
{
    private const string NoEntry = "no pg_hba.conf entry for host \"127.0.0.1\", user \"{0}\", database \"{1}\", no encryption";

    private static readonly Dictionary<string, string> s_users = new()
    {
        [PostgresFixture.AppUser] = PostgresFixture.AppPassword,
        [PostgresFixture.ScramUser] = PostgresFixture.ScramPassword,
    };

    private readonly PostgresFixture _fixture;

    public HbaTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task PerDatabaseAndUser_AllowRejectAndNoEntry()
    {
        await using var proxy = StartProxy(_fixture, AuthType.Hba, s_users, hba: """
            host  appdb     app         127.0.0.1/32  trust
            host  appdb     scram_user  127.0.0.1/32  scram-sha-256
            host  postgres  all         127.0.0.1/32  reject
            host  otherdb   app         127.0.0.1/32  md5
            """);

        // trust: no password asked; scram-sha-256 and md5: the password is checked.
        Assert.Equal("app", await CurrentUserAsync(proxy, "app", password: null));
        Assert.Equal("scram_user", await CurrentUserAsync(proxy, "scram_user", PostgresFixture.ScramPassword));
        await AssertPasswordFailureAsync(proxy, "scram_user", "wrong");
        Assert.Equal("app", await CurrentUserAsync(proxy, "app", PostgresFixture.AppPassword, "otherdb"));
        await AssertPasswordFailureAsync(proxy, "app", "wrong", "otherdb");

        await AssertLoginFailsAsync(proxy, "app", PostgresFixture.AppPassword, PostgresErrorCodes.InvalidAuthorizationSpecification,
            "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"app\", database \"postgres\", no encryption", "postgres");
        await AssertLoginFailsAsync(proxy, "scram_user", PostgresFixture.ScramPassword, PostgresErrorCodes.InvalidAuthorizationSpecification,
            string.Format(System.Globalization.CultureInfo.InvariantCulture, NoEntry, "scram_user", "otherdb"), "otherdb");
        await AssertLoginFailsAsync(proxy, "nobody", "x", PostgresErrorCodes.InvalidAuthorizationSpecification,
            string.Format(System.Globalization.CultureInfo.InvariantCulture, NoEntry, "nobody", "appdb"));
    }

    [Fact]
    public async Task PerAddress_OnlyTheClientsNetworkMatches()
    {
        await using (var proxy = StartProxy(_fixture, AuthType.Hba, s_users, hba: """
            host  all  all  10.0.0.0/8              trust
            host  all  all  127.0.0.2 255.255.255.255  trust
            host  all  all  127.0.0.0 255.0.0.0     scram-sha-256
            """))
        {
            // Only the last line covers 127.0.0.1, so a password is needed.
            await AssertPasswordFailureAsync(proxy, "app", "wrong");
            Assert.Equal("app", await CurrentUserAsync(proxy, "app", PostgresFixture.AppPassword));
        }

        await using (var proxy = StartProxy(_fixture, AuthType.Hba, s_users, hba: "host all all 192.168.0.0/16 trust"))
        {
            await AssertLoginFailsAsync(proxy, "app", PostgresFixture.AppPassword, PostgresErrorCodes.InvalidAuthorizationSpecification,
                string.Format(System.Globalization.CultureInfo.InvariantCulture, NoEntry, "app", "appdb"));
        }
    }

    [Fact]
    public async Task HostSsl_NeverMatchesWithoutTls_HostNoSslDoes()
    {
        await using var proxy = StartProxy(_fixture, AuthType.Hba, s_users, hba: """
            hostssl    all  all  127.0.0.1/32  trust
            hostnossl  all  all  127.0.0.1/32  scram-sha-256
            """);

        await AssertPasswordFailureAsync(proxy, "app", "wrong");
        Assert.Equal("app", await CurrentUserAsync(proxy, "app", PostgresFixture.AppPassword));
    }

    [Fact]
    public async Task UnixSocket_LocalLinesApply_PeerChecksTheOsUser()
    {
        var dir = Directory.CreateTempSubdirectory("fp-hba-").FullName;
        try
        {
            var osUser = Environment.UserName;

            // The OS user logs in through FastPool as itself; the server login is forced to the app role.
            await using var proxy = StartProxy(_fixture, AuthType.Hba, s_users,
                hba: $"""
                    local  all  {osUser}  peer
                    local  all  app       peer
                    host   all  all       127.0.0.1/32  reject
                    """,
                more: c => c with
                {
                    UnixSocketDir = dir,
                    Databases = [c.FallbackDatabase! with { Name = "peerdb", DbName = Database, User = "app" }],
                });

            var b = new NpgsqlConnectionStringBuilder { Host = dir, Port = proxy.Port, Database = "peerdb", Username = osUser, Pooling = false, Timeout = 15 };
            await using (var conn = new NpgsqlConnection(b.ConnectionString))
            {
                await conn.OpenAsync();
                await using var cmd = new NpgsqlCommand("select current_user", conn);
                Assert.Equal("app", await cmd.ExecuteScalarAsync());
            }

            // "app" is not who is at the other end of the socket.
            b.Username = "app";
            await using (var conn = new NpgsqlConnection(b.ConnectionString))
            {
                var ex = await Assert.ThrowsAsync<PostgresException>(() => conn.OpenAsync());
                Assert.Equal(PostgresErrorCodes.InvalidAuthorizationSpecification, ex.SqlState);
                Assert.Equal("peer authentication failed for user \"app\"", ex.MessageText);
            }

            // Over TCP the reject line applies.
            await AssertLoginFailsAsync(proxy, osUser, null, PostgresErrorCodes.InvalidAuthorizationSpecification,
                $"pg_hba.conf rejects connection for host \"127.0.0.1\", user \"{osUser}\", database \"peerdb\", no encryption", "peerdb");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task HbaFileFromPgBouncerIni_IsLoadedAndApplied()
    {
        var dir = Directory.CreateTempSubdirectory("fp-hba-ini-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "userlist.txt"), $"\"app\" \"{PostgresFixture.AppPassword}\"\n");
            File.WriteAllText(Path.Combine(dir, "dbs.txt"), "appdb\n");
            File.WriteAllText(Path.Combine(dir, "hba.conf"), "host @dbs.txt app 127.0.0.1/32 password\n");
            File.WriteAllText(Path.Combine(dir, "pgbouncer.ini"), $"""
                [databases]
                appdb = host=127.0.0.1 port={_fixture.Primary.Port}
                [pgbouncer]
                auth_type = hba
                auth_file = userlist.txt
                auth_hba_file = hba.conf
                """);
            var result = ConfigLoader.Load(Path.Combine(dir, "pgbouncer.ini"));
            Assert.True(result.Success, string.Join("\n", result.Errors));
            var config = result.Config! with { ListenAddresses = ["127.0.0.1"], ListenPort = 0, UnixSocketDir = string.Empty, StatsPeriod = TimeSpan.Zero };

            await using var proxy = ProxyHost.Start(config);
            Assert.Equal("app", await CurrentUserAsync(proxy, "app", PostgresFixture.AppPassword));
            await AssertPasswordFailureAsync(proxy, "app", "wrong");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
