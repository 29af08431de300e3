using FastPool.Sandbox;

namespace FastPool.IntegrationTests.Infrastructure;

/// <summary>Puts every test class marked <c>[Collection(PostgresCollection.Name)]</c> on one shared server.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "postgres";
}

/// <summary>
/// One throwaway PostgreSQL primary per test run (initdb takes seconds, so it is shared by the whole
/// "postgres" collection), with a few roles and databases tests can rely on, and an optional standby.
/// Tests that stop or kill a server should start their own <see cref="PgCluster"/> instead of touching this one.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    /// <summary>Ordinary LOGIN role owning <see cref="AppDatabase"/>; the default hba rules trust it.</summary>
    public const string AppUser = "app";

    /// <summary>Password of <see cref="AppUser"/> (unused under trust, handy if a test proxies with auth).</summary>
    public const string AppPassword = "app_pw";

    public const string AppDatabase = "appdb";

    /// <summary>Second, empty database, for tests that need pools keyed by different databases.</summary>
    public const string OtherDatabase = "otherdb";

    /// <summary>Role that must authenticate with SCRAM-SHA-256 over TCP (an hba rule ahead of the trust rules).</summary>
    public const string ScramUser = "scram_user";

    public const string ScramPassword = "scram_pw";

    /// <summary>Role that must authenticate with MD5 over TCP (its password is stored as an md5 hash).</summary>
    public const string Md5User = "md5_user";

    public const string Md5Password = "md5_pw";

    /// <summary>Role that must authenticate with the cleartext "password" method over TCP (PostgreSQL still allows it).</summary>
    public const string PasswordUser = "password_user";

    public const string PasswordUserPassword = "password_pw";

    /// <summary>Role of the per-database secrets tests (they create it): SCRAM over TCP, like on their second server.</summary>
    public const string TwinUser = "fp_twin";

    /// <summary>auth_user of the auth_query tests: must log in with SCRAM over TCP; the tests create the role.</summary>
    public const string AuthQueryUser = "fp_auth_lookup";

    private readonly SemaphoreSlim _standbyLock = new(1, 1);
    private PgCluster? _primary;
    private PgCluster? _standby;
    private string? _directory;

    /// <summary>The shared primary. Valid between InitializeAsync and DisposeAsync.</summary>
    internal PgCluster Primary => _primary ?? throw new InvalidOperationException("PostgresFixture is not initialized.");

    /// <summary>Connection string to the primary as the superuser, with Npgsql pooling off so tests never share sockets.</summary>
    public string SuperuserConnectionString(string database = "postgres") =>
        Primary.ConnectionString(database) + ";Pooling=false";

    /// <summary>Connection string to <see cref="AppDatabase"/> as <see cref="AppUser"/>, pooling off.</summary>
    public string AppConnectionString() =>
        Primary.ConnectionString(AppDatabase, AppUser) + ";Password=" + AppPassword + ";Pooling=false";

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        _directory = Directory.CreateTempSubdirectory("fastpool-it-").FullName;
        var options = new PgClusterOptions
        {
            ExtraHbaEntries =
            [
                $"host all {ScramUser} 127.0.0.1/32 scram-sha-256",
                $"host all {Md5User} 127.0.0.1/32 md5",
                $"host all {PasswordUser} 127.0.0.1/32 password",
                $"host all {TwinUser} 127.0.0.1/32 scram-sha-256",

                // The auth_user of the auth_query tests (the role is created by them) logs in with its password.
                $"host all {AuthQueryUser} 127.0.0.1/32 scram-sha-256",
            ],
        };
        _primary = await PgCluster.StartPrimaryAsync(_directory, options, cts.Token);

        // One psql call per statement: CREATE DATABASE cannot run inside the implicit transaction of a multi-statement -c.
        string[] setup =
        [
            $"CREATE ROLE {AppUser} LOGIN PASSWORD '{AppPassword}'",
            $"CREATE DATABASE {AppDatabase} OWNER {AppUser}",
            $"CREATE DATABASE {OtherDatabase} OWNER {AppUser}",
            $"CREATE ROLE {ScramUser} LOGIN PASSWORD '{ScramPassword}'",
            $"GRANT CONNECT ON DATABASE {AppDatabase} TO {ScramUser}",
            $"CREATE ROLE {PasswordUser} LOGIN PASSWORD '{PasswordUserPassword}'",

            // password_encryption decides how the password is stored, and an md5 hba rule needs an md5 hash.
            $"SET password_encryption = 'md5'; CREATE ROLE {Md5User} LOGIN PASSWORD '{Md5Password}'",
        ];
        foreach (var sql in setup)
        {
            await _primary.PsqlAsync(sql, ct: cts.Token);
        }
    }

    /// <summary>
    /// A streaming hot standby of <see cref="Primary"/>, created on first use (pg_basebackup costs a few seconds)
    /// and shared afterwards.
    /// </summary>
    internal async Task<PgCluster> GetStandbyAsync()
    {
        await _standbyLock.WaitAsync();
        try
        {
            if (_standby is null)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
                _standby = await Primary.AddStandbyAsync(cts.Token);
            }

            return _standby;
        }
        finally
        {
            _standbyLock.Release();
        }
    }

    public async Task DisposeAsync()
    {
        if (_primary is not null)
        {
            // Also stops the standby and deletes the whole directory.
            await _primary.DisposeAsync();
        }
        else if (_directory is not null && Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }

        _standbyLock.Dispose();
    }
}
