using System.Diagnostics;
using System.Net.Sockets;
using FastPool.Sandbox;
using Npgsql;

namespace FastPool.IntegrationTests.Infrastructure;

/// <summary>Checks the sandbox launcher itself, so proxy tests can trust the servers they get.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PgClusterTests
{
    private readonly PostgresFixture _fixture;

    public PgClusterTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Primary_AcceptsConnections()
    {
        await using var conn = new NpgsqlConnection(_fixture.SuperuserConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("select 1", conn);

        Assert.Equal(1, await cmd.ExecuteScalarAsync());
        Assert.Equal("primary", _fixture.Primary.Role);
        Assert.Equal("127.0.0.1", _fixture.Primary.Host);
    }

    [Fact]
    public async Task Primary_HasSandboxSettings()
    {
        var primary = _fixture.Primary;
        var settings = await primary.PsqlAsync(
            "select string_agg(name || '=' || setting, ',' order by name) from pg_settings " +
            "where name in ('fsync', 'max_connections', 'port', 'unix_socket_directories', 'wal_level')");

        Assert.Equal(
            $"fsync=off,max_connections=200,port={primary.Port},unix_socket_directories={primary.SocketDirectory},wal_level=replica",
            settings);

        // The unix socket the proxy can use as a backend address really exists.
        Assert.True(File.Exists(Path.Combine(primary.SocketDirectory, $".s.PGSQL.{primary.Port}")));
    }

    [Fact]
    public async Task AppRole_OwnsAppDatabase()
    {
        await using var conn = new NpgsqlConnection(_fixture.AppConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(
            "select current_user || '/' || current_database() || '/' || pg_get_userbyid(datdba) from pg_database where datname = current_database()",
            conn);

        Assert.Equal("app/appdb/app", await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task PasswordRoles_RequireTheirPasswords()
    {
        var primary = _fixture.Primary;
        var scram = primary.ConnectionString(PostgresFixture.AppDatabase, PostgresFixture.ScramUser) + ";Pooling=false";
        var md5 = primary.ConnectionString("postgres", PostgresFixture.Md5User) + ";Pooling=false";

        await using (var ok = new NpgsqlConnection(scram + ";Password=" + PostgresFixture.ScramPassword))
        {
            await ok.OpenAsync();
        }

        await using (var ok = new NpgsqlConnection(md5 + ";Password=" + PostgresFixture.Md5Password))
        {
            await ok.OpenAsync();
        }

        await using var bad = new NpgsqlConnection(scram + ";Password=wrong");
        var ex = await Assert.ThrowsAsync<PostgresException>(() => bad.OpenAsync());
        Assert.Equal(PostgresErrorCodes.InvalidPassword, ex.SqlState);
    }

    [Fact]
    public async Task Psql_ReturnsOutput_AndThrowsWithStderrOnError()
    {
        Assert.Equal("1\n2", await _fixture.Primary.PsqlAsync("select 1 union all select 2"));

        var ex = await Assert.ThrowsAsync<ProcessRunException>(() => _fixture.Primary.PsqlAsync("select * from no_such_table"));
        Assert.Contains("no_such_table", ex.Message, StringComparison.Ordinal);
        Assert.NotNull(ex.Result);
        Assert.NotEqual(0, ex.Result.ExitCode);
    }

    [Fact]
    public async Task Standby_IsInRecovery_AndReceivesPrimaryWrites()
    {
        var standby = await _fixture.GetStandbyAsync();
        Assert.Equal("standby", standby.Role);
        Assert.Same(_fixture.Primary, standby.Primary);
        Assert.NotEqual(_fixture.Primary.Port, standby.Port);

        await using var standbyConn = new NpgsqlConnection(standby.ConnectionString() + ";Pooling=false");
        await standbyConn.OpenAsync();
        await using (var recovery = new NpgsqlCommand("select pg_is_in_recovery()", standbyConn))
        {
            Assert.Equal(true, await recovery.ExecuteScalarAsync());
        }

        var marker = Guid.NewGuid().ToString("N");
        await _fixture.Primary.PsqlAsync("create table if not exists replication_probe(marker text primary key)");
        await using (var primaryConn = new NpgsqlConnection(_fixture.SuperuserConnectionString()))
        {
            await primaryConn.OpenAsync();
            await using var insert = new NpgsqlCommand("insert into replication_probe values ($1)", primaryConn);
            insert.Parameters.AddWithValue(marker);
            await insert.ExecuteNonQueryAsync();
        }

        // Replication is asynchronous: poll the standby (the table itself may not exist there yet).
        var sw = Stopwatch.StartNew();
        while (true)
        {
            await using var probe = new NpgsqlCommand(
                "select count(*) from pg_class where relname = 'replication_probe'", standbyConn);
            if ((long)(await probe.ExecuteScalarAsync())! == 1)
            {
                await using var select = new NpgsqlCommand("select count(*) from replication_probe where marker = $1", standbyConn);
                select.Parameters.AddWithValue(marker);
                if ((long)(await select.ExecuteScalarAsync())! == 1)
                {
                    break;
                }
            }

            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), "row inserted on the primary did not reach the standby within 10 s");
            await Task.Delay(50);
        }

        await using var write = new NpgsqlCommand("insert into replication_probe values ('x')", standbyConn);
        var readOnly = await Assert.ThrowsAsync<PostgresException>(() => write.ExecuteNonQueryAsync());
        Assert.Equal(PostgresErrorCodes.ReadOnlySqlTransaction, readOnly.SqlState);
    }

    [Fact]
    public async Task StoppedCluster_RefusesConnections_AndAcceptsThemAfterRestart()
    {
        // Its own server: stopping the shared primary would break tests running after this one.
        await using var cluster = await StartPrivateClusterAsync();
        var connString = cluster.ConnectionString() + ";Pooling=false;Timeout=5";
        Assert.Equal(1, await SelectOneAsync(connString));

        foreach (var immediate in new[] { false, true })
        {
            await cluster.StopAsync(immediate);
            Assert.False(cluster.IsRunning);
            Assert.False(IsPortOpen(cluster.Port));
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => SelectOneAsync(connString));

            await cluster.StartAsync();
            Assert.True(cluster.IsRunning);
            Assert.Equal(1, await SelectOneAsync(connString));
        }
    }

    [Fact]
    public async Task KilledCluster_DropsRunningQuery_AndRecoversAfterStart()
    {
        await using var cluster = await StartPrivateClusterAsync();
        var connString = cluster.ConnectionString() + ";Pooling=false;Timeout=5";
        await cluster.PsqlAsync("create table survivor(id int); insert into survivor values (42); checkpoint");

        await using var conn = new NpgsqlConnection(connString);
        await conn.OpenAsync();
        await using var sleep = new NpgsqlCommand("select pg_sleep(30)", conn);
        var running = sleep.ExecuteNonQueryAsync();
        await Task.Delay(300);

        var sw = Stopwatch.StartNew();
        await cluster.KillAsync();
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => running);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"query was not interrupted promptly ({sw.Elapsed})");
        Assert.False(IsPortOpen(cluster.Port));

        await cluster.StartAsync();
        Assert.Equal("42", await cluster.PsqlAsync("select id from survivor"));
    }

    [Fact]
    public async Task DisposedCluster_StopsStandbyAndPrimary_AndDeletesDirectory()
    {
        var cluster = await StartPrivateClusterAsync();
        var standby = await cluster.AddStandbyAsync(CancellationToken.None);
        Assert.Equal("t", await standby.PsqlAsync("select pg_is_in_recovery()"));
        var ports = new[] { cluster.Port, standby.Port };

        await cluster.DisposeAsync();

        Assert.False(Directory.Exists(cluster.BaseDirectory));
        Assert.All(ports, port => Assert.False(IsPortOpen(port), $"port {port} still open"));
        Assert.False(standby.IsRunning);
    }

    [Fact]
    public async Task SandboxEnvironment_CreatesPrimaryAndStandby_AndCleansUp()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var sandbox = await SandboxEnvironment.CreateAsync(cts.Token);
        string directory;
        int[] ports;
        try
        {
            directory = sandbox.Directory;
            ports = [sandbox.Primary.Port, sandbox.Standby.Port];
            Assert.StartsWith(Path.Combine(Path.GetTempPath(), "fastpool-sandbox-"), directory, StringComparison.Ordinal);
            Assert.True(Directory.Exists(directory));

            await using (var conn = new NpgsqlConnection(sandbox.Primary.ConnectionString() + ";Pooling=false"))
            {
                await conn.OpenAsync();
                await using var cmd = new NpgsqlCommand("select count(*) from pg_stat_replication where state = 'streaming'", conn);
                Assert.Equal(1L, await cmd.ExecuteScalarAsync());
            }

            Assert.Equal("t", await sandbox.Standby.PsqlAsync("select pg_is_in_recovery()"));
        }
        finally
        {
            await sandbox.DisposeAsync();
        }

        Assert.False(Directory.Exists(directory), $"{directory} still exists");
        Assert.All(ports, port => Assert.False(IsPortOpen(port), $"port {port} still open"));

        // Idempotent.
        await sandbox.DisposeAsync();
    }

    private static async Task<PgCluster> StartPrivateClusterAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var directory = Directory.CreateTempSubdirectory("fastpool-it-").FullName;
        return await PgCluster.StartPrimaryAsync(directory, new PgClusterOptions { MaxConnections = 20 }, cts.Token);
    }

    private static async Task<int> SelectOneAsync(string connectionString)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("select 1", conn);
        return (int)(await cmd.ExecuteScalarAsync())!;
    }

    private static bool IsPortOpen(int port)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect("127.0.0.1", port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
