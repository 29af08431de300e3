using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using Npgsql;
using static FastPool.IntegrationTests.Admin.AdminSupport;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Admin;

/// <summary>The console's commands that change things, and who may run them.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ControlCommandTests
{
    private readonly PostgresFixture _fixture;

    public ControlCommandTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Pause_HoldsANewQueryUntilResume()
    {
        await using var host = StartProxy(_fixture.Primary);

        // A first client logs in and leaves, so the pool knows the server's parameters and later logins need no server.
        await using (var first = await host.OpenAsync())
        {
            Assert.Equal(1, await ScalarAsync<int>(first, "select 1"));
        }

        await RunAsync(host.Port, "PAUSE postgres");
        var paused = await ShowAsync(host.Port, "SHOW DATABASES");
        Assert.Equal(1, paused.Int(paused.Single("name", "postgres"), "paused"));

        await using var client = await host.OpenAsync();
        var query = ScalarAsync<int>(client, "select 42");
        await WaitUntilAsync(async () =>
        {
            var pools = await ShowAsync(host.Port, "SHOW POOLS");
            return pools.Int(pools.Single("database", "postgres"), "cl_waiting") == 1;
        }, "the query waits for RESUME");
        Assert.False(query.IsCompleted);

        await RunAsync(host.Port, "RESUME postgres");
        Assert.Equal(42, await query.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task A_query_held_by_pause_gets_query_wait_timeout_as_with_pgbouncer()
    {
        await using var host = StartProxy(_fixture.Primary, c => c with { QueryWaitTimeout = TimeSpan.FromSeconds(2) });
        await using (var first = await host.OpenAsync())
        {
            Assert.Equal(1, await ScalarAsync<int>(first, "select 1"));
        }

        await RunAsync(host.Port, "PAUSE postgres");
        await using var client = await host.OpenAsync();
        var ex = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync<int>(client, "select 42").WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal("08P01", ex.SqlState);
        Assert.Equal("query_wait_timeout", ex.MessageText);

        await RunAsync(host.Port, "RESUME postgres");
        await using var after = await host.OpenAsync();
        Assert.Equal(7, await ScalarAsync<int>(after, "select 7"));
    }

    [Fact]
    public async Task KillClient_DisconnectsThatClientOnly()
    {
        await using var host = StartProxy(_fixture.Primary);
        await using var victim = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(host.ConnectionString()) { ApplicationName = "victim" }.ConnectionString);
        await victim.OpenAsync();
        await using var bystander = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(victim, "select 1"));

        var clients = await ShowAsync(host.Port, "SHOW CLIENTS");
        var id = clients.Value(clients.Single("application_name", "victim"), "id");
        await RunAsync(host.Port, "kill_client " + id + ";");

        await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync<int>(victim, "select 1"));
        Assert.Equal(2, await ScalarAsync<int>(bystander, "select 2"));
        Assert.Empty((await ShowAsync(host.Port, "SHOW CLIENTS")).Where("application_name", "victim"));

        var missing = await PsqlAsync(host.Port, "KILL_CLIENT 999999999");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("no client with id", missing.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Disable_RejectsNewClients_KeepsConnectedOnes_AndEnableLetsThemIn()
    {
        await using var host = StartProxy(_fixture.Primary);
        await using var connected = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(connected, "select 1"));

        await RunAsync(host.Port, "DISABLE postgres");
        var ex = await Assert.ThrowsAsync<PostgresException>(() => host.OpenAsync());
        Assert.Equal("55000", ex.SqlState);
        Assert.Equal(2, await ScalarAsync<int>(connected, "select 2"));

        // Other databases are not affected.
        await using (var other = await host.OpenAsync(database: PostgresFixture.AppDatabase))
        {
            Assert.Equal(3, await ScalarAsync<int>(other, "select 3"));
        }

        await RunAsync(host.Port, "ENABLE postgres");
        await using var again = await host.OpenAsync();
        Assert.Equal(4, await ScalarAsync<int>(again, "select 4"));
    }

    [Fact]
    public async Task KillDatabase_DropsItsClients_AndNewOnesWaitForResume()
    {
        await using var host = StartProxy(_fixture.Primary);
        await using var client = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(client, "select 1"));

        await RunAsync(host.Port, "KILL postgres");
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync<int>(client, "select 1"));
        await WaitUntilAsync(async () => (await ShowAsync(host.Port, "SHOW SERVERS")).Rows.Count == 0, "the killed database's servers are closed");

        await RunAsync(host.Port, "RESUME");
        await using var fresh = await host.OpenAsync();
        Assert.Equal(2, await ScalarAsync<int>(fresh, "select 2"));
    }

    [Fact]
    public async Task Set_ChangesALiveSetting_AndRejectsBadValuesAndFixedSettings()
    {
        await using var host = StartProxy(_fixture.Primary);
        await RunAsync(host.Port, "SET default_pool_size = 9");
        var config = await ShowAsync(host.Port, "SHOW CONFIG");
        Assert.Equal("9", config.Value(config.Single("key", "default_pool_size"), "value"));

        var bad = await PsqlAsync(host.Port, "SET default_pool_size = lots");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("invalid value \"lots\" for default_pool_size", bad.StandardError, StringComparison.Ordinal);

        var fixedKey = await PsqlAsync(host.Port, "SET listen_port = 1234");
        Assert.NotEqual(0, fixedKey.ExitCode);
        Assert.Contains("cannot be changed while FastPool runs", fixedKey.StandardError, StringComparison.Ordinal);

        // The timeouts change at run time as with PgBouncer, for the clients that log in next.
        await RunAsync(host.Port, "SET client_idle_timeout = 1");
        await using var idle = await FastPool.IntegrationTests.Resilience.RawPgClient.ConnectAsync(host.Port);
        await idle.LoginAsync("postgres");
        var (messages, closed) = await idle.ReadUntilClosedAsync(TimeSpan.FromSeconds(15));
        Assert.True(closed, "client_idle_timeout set by SET did not close an idle client");
        Assert.Equal("client_idle_timeout", Assert.Single(messages, m => m.Type == 'E').Text);
    }

    [Fact]
    public async Task StatsUser_MayShowButNotControl_AndOthersAreRefusedWith42501()
    {
        await using var host = StartProxy(_fixture.Primary);
        await using (var stats = await RawPgClient.ConnectAsync("127.0.0.1", host.Port, AdminSupport.Stats, "pgbouncer"))
        {
            var show = await stats.QueryAsync("SHOW POOLS");
            Assert.Null(show.ErrorCode);
            Assert.Equal("pool_mode", show.Results.Single().Columns[^1]);

            var pause = await stats.QueryAsync("PAUSE");
            Assert.Equal("42501", pause.ErrorCode);

            // Still usable after the refusal.
            Assert.Null((await stats.QueryAsync("SHOW VERSION")).ErrorCode);
        }

        var ex = await Assert.ThrowsAsync<PostgresException>(() => host.OpenAsync(database: "pgbouncer", user: "postgres"));
        Assert.Equal("42501", ex.SqlState);

        var psql = await PsqlAsync(host.Port, "SHOW POOLS", user: "postgres");
        Assert.NotEqual(0, psql.ExitCode);
        Assert.Contains("not allowed", psql.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownCommandsAndEmptyQueries_GetClearAnswers_AndTheConnectionStaysUsable()
    {
        await using var host = StartProxy(_fixture.Primary);
        await using var console = await RawPgClient.ConnectAsync("127.0.0.1", host.Port, AdminSupport.Admin, "fastpool");
        Assert.Equal("42601", (await console.QueryAsync("FROBNICATE ALL")).ErrorCode);
        Assert.Equal("42601", (await console.QueryAsync("SHOW NOTHING")).ErrorCode);
        Assert.Equal("42601", (await console.QueryAsync("SHOW POOLS; SHOW STATS")).ErrorCode);
        Assert.Equal(1, (await console.QueryAsync(" ; ")).EmptyQueryResponses);

        var version = await console.QueryAsync("show version ;");
        Assert.Null(version.ErrorCode);
        Assert.StartsWith("PgBouncer", version.Results.Single().Rows.Single()[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Malformed_console_messages_get_PostgreSQLs_errors_and_a_bad_length_a_FATAL()
    {
        await using var host = StartProxy(_fixture.Primary);
        await using (var console = await FastPool.IntegrationTests.Resilience.RawPgClient.ConnectAsync(host.Port))
        {
            await console.LoginAsync("pgbouncer", AdminSupport.Admin);

            // A Query body is one C string (55.7): without its terminator, or with bytes after it, PostgreSQL says so
            // and goes on. The console used to cut the last character off, or take the stray zero into the name.
            foreach (var (body, expected) in new[] { ("SHOW VERSION"u8.ToArray(), "invalid string in message"), ([.. "SHOW VERSION"u8, 0, 0], "invalid message format") })
            {
                await console.SendAsync(FastPool.IntegrationTests.Resilience.RawPgClient.Message('Q', body));
                var error = await console.ReadMessageAsync(TimeSpan.FromSeconds(5));
                Assert.Equal(('E', "08P01", expected), (error!.Type, error.SqlState, error.Text));
                Assert.Equal('Z', (await console.ReadMessageAsync(TimeSpan.FromSeconds(5)))!.Type);
            }

            await console.SendAsync([(byte)'Q', .. FastPool.IntegrationTests.Resilience.RawPgClient.Int32(3)]);
            var (messages, closed) = await console.ReadUntilClosedAsync(TimeSpan.FromSeconds(5));
            Assert.Equal("08P01", Assert.Single(messages).SqlState);
            Assert.True(closed, "the console kept the connection open after a bad length");
        }

        await RunAsync(host.Port, "SHOW VERSION");
    }

    [Fact]
    public async Task ExtendedProtocol_GetsAClearError_NotACrash()
    {
        await using var host = StartProxy(_fixture.Primary);
        // Without type loading Npgsql sends nothing at open, so the console's first extended message is the command.
        var builder = new NpgsqlDataSourceBuilder(host.ConnectionString(database: "pgbouncer", user: AdminSupport.Admin));
        builder.ConfigureTypeLoading(t => t.EnableTypeLoading(false));
        await using var dataSource = builder.Build();
        await using var conn = await dataSource.OpenConnectionAsync();
        for (int i = 0; i < 2; i++)
        {
            var ex = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync<string>(conn, "SHOW VERSION"));
            Assert.Equal("0A000", ex.SqlState);
            Assert.Contains("simple query protocol", ex.MessageText, StringComparison.Ordinal);
        }

        Assert.Equal(System.Data.ConnectionState.Open, conn.State);
        var version = await ShowAsync(host.Port, "SHOW VERSION");
        Assert.Single(version.Rows);
    }

    [Fact]
    public async Task Shutdown_StopsFastPool()
    {
        await using var host = StartProxy(_fixture.Primary);
        var result = await PsqlAsync(host.Port, "SHUTDOWN");
        Assert.True(result.ExitCode == 0, result.ToString());
        await host.Server.ShutdownRequested.WaitAsync(TimeSpan.FromSeconds(10));
        await WaitUntilAsync(async () =>
        {
            try
            {
                await using var c = await host.OpenAsync();
                return false;
            }
            catch (NpgsqlException)
            {
                return true;
            }
        }, "FastPool stops accepting clients");
        Assert.Contains(host.Logs, l => l.Contains("admin command: SHUTDOWN", StringComparison.Ordinal));
    }
}
