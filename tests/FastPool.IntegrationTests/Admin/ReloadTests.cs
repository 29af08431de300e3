using FastPool.IntegrationTests.Cli;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Admin.AdminSupport;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Admin;

/// <summary>Online reload (RELOAD, SIGHUP): new settings apply live, broken files are rejected whole, nobody is disconnected.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ReloadTests : IDisposable
{
    private readonly PostgresFixture _fixture;
    private readonly string _directory = Directory.CreateTempSubdirectory("fastpool-reload-").FullName;

    public ReloadTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    private string ConfigPath => Path.Combine(_directory, "pgbouncer.ini");

    private string UserListPath => Path.Combine(_directory, "userlist.txt");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>Writes the config file; [databases] lines as given, or the "*" fallback to the shared server.</summary>
    private void WriteConfig(string pgbouncerLines, string? databaseLines = null)
    {
        var backend = _fixture.Primary;

        // trust lets in only the users the auth_file names.
        File.WriteAllText(UserListPath, $"\"postgres\" \"\"\n\"{AdminSupport.Admin}\" \"\"\n");
        File.WriteAllText(ConfigPath, $"""
            [databases]
            {databaseLines ?? $"* = host={backend.Host} port={backend.Port}"}

            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = 6432
            unix_socket_dir =
            auth_type = trust
            auth_file = {UserListPath}
            admin_users = {AdminSupport.Admin}
            stats_period = 0
            {pgbouncerLines}

            """);
    }

    /// <summary>FastPool in-process from the file, on a free port (listen settings are not reloadable, so the override stays).</summary>
    private ProxyHost StartFromFile()
    {
        var loaded = ConfigLoader.Load(ConfigPath);
        Assert.True(loaded.Success, string.Join('\n', loaded.Errors));
        return ProxyHost.Start(loaded.Config! with { ListenPort = 0 });
    }

    private static async Task<string> ConfigValueAsync(ProxyHost host, string key)
    {
        var config = await ShowAsync(host.Port, "SHOW CONFIG");
        return config.Value(config.Single("key", key), "value");
    }

    [Fact]
    public async Task Reload_GrowsThePoolLive_WithoutDisconnectingAnyone()
    {
        WriteConfig("default_pool_size = 1");
        await using var host = StartFromFile();
        await using var holder = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(holder, "select 1"));

        // The only server is taken: a second client's query waits in line.
        await using var waiter = await host.OpenAsync();
        var waiting = ScalarAsync<int>(waiter, "select 2");
        await WaitUntilAsync(async () =>
        {
            var pools = await ShowAsync(host.Port, "SHOW POOLS");
            return pools.Int(pools.Single("database", "postgres"), "cl_waiting") == 1;
        }, "the second client waits for a server");

        WriteConfig("default_pool_size = 2");
        await RunAsync(host.Port, "RELOAD");

        Assert.Equal(2, await waiting.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(3, await ScalarAsync<int>(holder, "select 3"));
        Assert.Equal("2", await ConfigValueAsync(host, "default_pool_size"));
        Assert.Contains(host.Logs, l => l.Contains("configuration reloaded", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Reload_OfABrokenFile_IsRejectedWhole_AndTheOldConfigKeepsRunning()
    {
        WriteConfig("default_pool_size = 3");
        await using var host = StartFromFile();
        await using var client = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(client, "select 1"));

        // One valid change next to an invalid value: neither may apply.
        WriteConfig("default_pool_size = lots\nmax_client_conn = 7");
        var reload = await PsqlAsync(host.Port, "RELOAD");
        Assert.NotEqual(0, reload.ExitCode);
        Assert.Contains("invalid value \"lots\" for default_pool_size", reload.StandardError, StringComparison.Ordinal);
        Assert.Contains(host.Logs, l => l.Contains("rejected", StringComparison.Ordinal) && l.Contains("lots", StringComparison.Ordinal));

        Assert.Equal("3", await ConfigValueAsync(host, "default_pool_size"));
        Assert.Equal("100", await ConfigValueAsync(host, "max_client_conn"));
        Assert.Equal(2, await ScalarAsync<int>(client, "select 2"));
        await using var fresh = await host.OpenAsync();
        Assert.Equal(3, await ScalarAsync<int>(fresh, "select 3"));
    }

    [Fact]
    public async Task Reload_AddsAndRepointsDatabases_ConnectedClientsKeepTheirServer()
    {
        var backend = _fixture.Primary;
        string entry(string name, string db) => $"{name} = host={backend.Host} port={backend.Port} dbname={db}";
        WriteConfig(string.Empty, entry("main", "postgres"));
        await using var host = StartFromFile();
        await using var before = await host.OpenAsync(database: "main");
        Assert.Equal("postgres", await ScalarAsync<string>(before, "select current_database()"));
        var missing = await Assert.ThrowsAsync<PostgresException>(() => host.OpenAsync(database: "orders"));
        Assert.Equal("3D000", missing.SqlState);

        WriteConfig(string.Empty, entry("main", PostgresFixture.OtherDatabase) + "\n" + entry("orders", PostgresFixture.AppDatabase));
        await RunAsync(host.Port, "RELOAD");

        await using var orders = await host.OpenAsync(database: "orders");
        Assert.Equal(PostgresFixture.AppDatabase, await ScalarAsync<string>(orders, "select current_database()"));
        await using var after = await host.OpenAsync(database: "main");
        Assert.Equal(PostgresFixture.OtherDatabase, await ScalarAsync<string>(after, "select current_database()"));

        // The client from before the reload was not cut off: it still has its server on the old database.
        Assert.Equal("postgres", await ScalarAsync<string>(before, "select current_database()"));
        var dbs = await ShowAsync(host.Port, "SHOW DATABASES");
        Assert.Equal(PostgresFixture.OtherDatabase, dbs.Value(dbs.Single("name", "main"), "database"));
    }

    [Fact]
    public async Task Sighup_ReloadsTheFile_AndABrokenFileLeavesFastPoolRunning()
    {
        using var ws = new CliWorkspace();
        var port = FastPoolProcess.GetFreePort();
        var path = ws.WriteOperatorConfig(_fixture.Primary.Port, port);
        await using var p = FastPoolProcess.Start([path], workingDirectory: ws.Directory);
        await p.WaitForStartAsync(port, TimeSpan.FromSeconds(15));

        async Task<string?> PoolSizeAsync()
        {
            var (code, stdout, _) = await FastPoolProcess.PsqlAsync(port, "SHOW CONFIG", database: "pgbouncer");
            return code != 0 ? null : stdout.Split('\n').FirstOrDefault(l => l.StartsWith("default_pool_size|", StringComparison.Ordinal))?.Split('|')[1];
        }

        Assert.Equal("20", await PoolSizeAsync());
        var original = File.ReadAllText(path);
        File.WriteAllText(path, original.Replace("default_pool_size = 20", "default_pool_size = 7", StringComparison.Ordinal));
        p.Signal(1); // SIGHUP
        await WaitUntilAsync(async () => await PoolSizeAsync() == "7", "SIGHUP applied default_pool_size = 7\n" + p.Describe());

        File.WriteAllText(path, original.Replace("default_pool_size = 20", "default_pool_size = -3", StringComparison.Ordinal));
        p.Signal(1);
        await WaitUntilAsync(() => Task.FromResult(File.ReadAllText(ws.LogFile).Contains("rejected", StringComparison.Ordinal)), "the broken file is rejected in the log\n" + p.Describe());
        Assert.False(p.HasExited, p.Describe());
        Assert.Equal("7", await PoolSizeAsync());
        var (code, stdout, stderr) = await FastPoolProcess.PsqlAsync(port, "select 41 + 1");
        Assert.True(code == 0, stderr);
        Assert.Equal("42", stdout.Trim());
    }
}
