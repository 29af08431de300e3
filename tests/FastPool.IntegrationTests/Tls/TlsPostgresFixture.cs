using FastPool.Sandbox;

namespace FastPool.IntegrationTests.Tls;

[CollectionDefinition(Name)]
public sealed class TlsPostgresCollection : ICollectionFixture<TlsPostgresFixture>
{
    public const string Name = "tls-postgres";
}

/// <summary>
/// A PostgreSQL with ssl = on (its own cluster, so the shared one keeps its plaintext behaviour) for the server_tls_*
/// tests. It serves the test CA's certificate for 127.0.0.1 and also listens on 127.0.0.2, a name that certificate
/// does not carry. <see cref="ScramUser"/> may only log in over TLS, with SCRAM; everyone else is trusted.
/// </summary>
public sealed class TlsPostgresFixture : IAsyncLifetime
{
    public const string ScramUser = "tls_scram";
    public const string ScramPassword = "tls_scram_pw";

    private PgCluster? _cluster;

    internal PgCluster Cluster => _cluster ?? throw new InvalidOperationException("not initialized");

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var directory = Directory.CreateTempSubdirectory("fastpool-it-tls-").FullName;

        // PostgreSQL reads these as the postgres OS user: the sandbox chowns its whole base directory, and the
        // key must not be readable by anyone else (PostgreSQL refuses a group- or world-readable key).
        var tlsDirectory = Path.Combine(directory, "tls");
        Directory.CreateDirectory(tlsDirectory);
        var (cert, key) = TestPki.Shared.Server;
        var certFile = Path.Combine(tlsDirectory, "server.crt");
        var keyFile = Path.Combine(tlsDirectory, "server.key");
        File.Copy(cert, certFile);
        File.Copy(key, keyFile);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        var options = new PgClusterOptions
        {
            MaxConnections = 50,
            Settings = new Dictionary<string, string>
            {
                ["ssl"] = "on",
                ["ssl_cert_file"] = $"'{certFile}'",
                ["ssl_key_file"] = $"'{keyFile}'",
                ["listen_addresses"] = "'127.0.0.1,127.0.0.2'",
            },
            ExtraHbaEntries =
            [
                $"hostssl    all  {ScramUser}  127.0.0.0/8  scram-sha-256",
                $"hostnossl  all  {ScramUser}  all          reject",
                "host       all  all          127.0.0.2/32 trust",
            ],
        };
        _cluster = await PgCluster.StartPrimaryAsync(directory, options, cts.Token);
        await _cluster.PsqlAsync($"SET password_encryption = 'scram-sha-256'; CREATE ROLE {ScramUser} LOGIN PASSWORD '{ScramPassword}'", ct: cts.Token);
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}
