using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using FastPool.Sandbox;
using Npgsql;

namespace FastPool.IntegrationTests.Auth;

/// <summary>A second PostgreSQL server where the twin user has another password than on the shared primary.</summary>
public sealed class TwinServerFixture : IAsyncLifetime
{
    public const string User = "fp_twin";
    public const string PrimaryPassword = "twin-on-primary";
    public const string TwinPassword = "twin-on-twin";

    private PgCluster? _cluster;

    internal PgCluster Cluster => _cluster ?? throw new InvalidOperationException("not initialized");

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var directory = Directory.CreateTempSubdirectory("fastpool-twin-").FullName;
        _cluster = await PgCluster.StartPrimaryAsync(
            directory, new PgClusterOptions { MaxConnections = 20, ExtraHbaEntries = [$"host all {User} 127.0.0.1/32 scram-sha-256"] }, cts.Token);
        await _cluster.PsqlAsync($"CREATE ROLE {User} LOGIN PASSWORD '{TwinPassword}'", ct: cts.Token);
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}

/// <summary>
/// One user name, two database entries on two servers with different secrets for it, both found by auth_query, and
/// no password anywhere: each database's server logins use what clients proved for that database (SCRAM
/// passthrough keys), never what they proved for the other.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PerDatabaseSecretsTests : IClassFixture<TwinServerFixture>
{
    private readonly PostgresFixture _fixture;
    private readonly PgCluster _twin;

    public PerDatabaseSecretsTests(PostgresFixture fixture, TwinServerFixture twin)
    {
        _fixture = fixture;
        _twin = twin.Cluster;
    }

    [Fact]
    public async Task SameUserOnTwoServers_EachDatabaseLogsInWithItsOwnScramKeys()
    {
        const string user = TwinServerFixture.User;
        await _fixture.Primary.PsqlAsync(
            $"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN CREATE ROLE {user} LOGIN; END IF; END $$; "
            + $"ALTER ROLE {user} PASSWORD '{TwinServerFixture.PrimaryPassword}'");

        // Both servers demand SCRAM from fp_twin and trust the superuser, which runs PgBouncer's default auth_query.
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with
        {
            AuthType = AuthType.ScramSha256,
            AuthUser = "postgres",
            PoolMode = PoolMode.Transaction,
            FallbackDatabase = null,
            Databases =
            [
                new DatabaseConfig { Name = "one", DbName = "postgres", Nodes = [new NodeEndpoint(_fixture.Primary.Host, _fixture.Primary.Port)] },
                new DatabaseConfig { Name = "two", DbName = "postgres", Nodes = [new NodeEndpoint(_twin.Host, _twin.Port)] },
            ],
        });

        await using var first = await OpenAsync(proxy, "one", TwinServerFixture.PrimaryPassword);
        await using var second = await OpenAsync(proxy, "one", TwinServerFixture.PrimaryPassword);
        Assert.Equal(user, await CurrentUserAsync(first));

        // The latest client SCRAM login of fp_twin is now to "two", with the other server's secret.
        await using var other = await OpenAsync(proxy, "two", TwinServerFixture.TwinPassword);
        Assert.Equal(user, await CurrentUserAsync(other));

        // "first" holds its server in a transaction, so "second" needs a new server login to "one": it must use the
        // keys proved for "one" (the other server's keys have another salt and would be refused).
        await using (var tx = await first.BeginTransactionAsync())
        {
            Assert.Equal(user, await CurrentUserAsync(first));
            Assert.Equal(user, await CurrentUserAsync(second));
            await tx.CommitAsync();
        }

        Assert.Equal(2L, await ScalarAsync(first, "select count(*) from pg_stat_activity where usename = 'fp_twin' and datname = 'postgres'"));

        // And each database checks the client against its own server's secret.
        await AuthTestSupport.AssertPasswordFailureAsync(proxy, user, TwinServerFixture.TwinPassword, "one");
        await AuthTestSupport.AssertPasswordFailureAsync(proxy, user, TwinServerFixture.PrimaryPassword, "two");
        Assert.DoesNotContain(proxy.Logs, l => l.Contains("another salt", StringComparison.Ordinal));
    }

    private static async Task<NpgsqlConnection> OpenAsync(ProxyHost proxy, string database, string password)
    {
        var conn = new NpgsqlConnection(proxy.ConnectionString(database, TwinServerFixture.User, password));
        await conn.OpenAsync();
        return conn;
    }

    private static async Task<string> CurrentUserAsync(NpgsqlConnection conn) => (string)(await ScalarAsync(conn, "select current_user"))!;

    private static async Task<object?> ScalarAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync();
    }
}
