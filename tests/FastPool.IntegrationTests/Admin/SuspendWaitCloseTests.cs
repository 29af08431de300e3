using System.Net;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using static FastPool.IntegrationTests.Admin.AdminSupport;
using static FastPool.IntegrationTests.Metrics.MetricsSupport;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Admin;

/// <summary>SUSPEND and WAIT_CLOSE on the console, as an operator preparing a restart or a server move uses them.</summary>
[Collection(PostgresCollection.Name)]
public sealed class SuspendWaitCloseTests
{
    private readonly PostgresFixture _fixture;

    public SuspendWaitCloseTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    /// <summary>
    /// PgBouncer's SUSPEND: buffers are flushed, then nothing moves on any connection (those holding a server
    /// included) until RESUME. A client inside a transaction sends a query: it does not complete while suspended,
    /// and completes with its rows after RESUME; an answer that was on its way from the server when SUSPEND came
    /// is held too; a client without a server waits for one.
    /// </summary>
    [Theory]
    [InlineData(PoolMode.Session)]
    [InlineData(PoolMode.Transaction)]
    public async Task Suspend_FreezesSessionsHoldingAServer_UntilResume(PoolMode mode)
    {
        await using var host = StartWithMetrics(_fixture.Primary, c => c with { PoolMode = mode });
        await using var idle = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(idle, "select 1"));

        await using var busy = await host.OpenAsync(PostgresFixture.AppDatabase, PostgresFixture.AppUser);
        await ExecAsync(busy, "begin");
        Assert.Equal(5, await ScalarAsync<int>(busy, "select 5"));

        // An answer the server sends while suspended: the query waits on the server for a lock this test holds
        // until SUSPEND is in effect.
        await using var super = new Npgsql.NpgsqlConnection(_fixture.SuperuserConnectionString(PostgresFixture.AppDatabase));
        await super.OpenAsync();
        await ExecAsync(super, "select pg_advisory_lock(61061)");
        await using var locked = await host.OpenAsync(PostgresFixture.AppDatabase, PostgresFixture.AppUser);
        var unlocked = ScalarAsync<int>(locked, "select 7 from (select pg_advisory_lock_shared(61061)) l");
        const string lockedQuery = "select count(*) from pg_stat_activity where query like 'select 7 from (select pg_advisory_lock_shared%' and state = ";
        await WaitUntilAsync(async () => await ScalarAsync<long>(super, lockedQuery + "'active'") == 1, "the query waits for the lock on the server");

        await RunAsync(host.Port, "SUSPEND").WaitAsync(TimeSpan.FromSeconds(20));
        var state = await ShowAsync(host.Port, "SHOW STATE");
        Assert.Equal("yes", state.Value(state.Single("key", "suspended"), "value"));
        Assert.Equal("no", state.Value(state.Single("key", "paused"), "value"));
        Assert.Equal("no", state.Value(state.Single("key", "active"), "value"));
        var health = await GetAsync(host, "/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.Status);
        Assert.Equal("suspended\n", health.Body);

        // The client in the middle of its transaction, the next transaction of the idle one, and a new client.
        var inTransaction = RowsAsync(busy, "select generate_series(1, 3)");
        var opening = host.OpenAsync();
        var next = ScalarAsync<int>(idle, "select 42");
        if (mode == PoolMode.Transaction)
        {
            await WaitUntilAsync(async () =>
            {
                var pools = await ShowAsync(host.Port, "SHOW POOLS");
                return pools.Int(pools.Single("database", "postgres"), "cl_waiting") == 1;
            }, "the transaction waits for a server while suspended");
        }

        // The locked query finishes on the server now; its answer, like the rest, waits in FastPool.
        await ExecAsync(super, "select pg_advisory_unlock(61061)");
        await WaitUntilAsync(async () => await ScalarAsync<long>(super, lockedQuery + "'idle'") == 1, "the server answered the query");
        await Task.Delay(500);
        Assert.False(inTransaction.IsCompleted, "a query inside a transaction completed while suspended");
        Assert.False(unlocked.IsCompleted, "an answer reached its client while suspended");
        Assert.False(next.IsCompleted, "a new transaction got a server while suspended");
        Assert.False(opening.IsCompleted, "a new client logged in while suspended");

        var again = await PsqlAsync(host.Port, "SUSPEND");
        Assert.NotEqual(0, again.ExitCode);
        Assert.Contains("already suspended", again.StandardError, StringComparison.Ordinal);
        var pause = await PsqlAsync(host.Port, "PAUSE");
        Assert.NotEqual(0, pause.ExitCode);
        Assert.Contains("already suspended/paused", pause.StandardError, StringComparison.Ordinal);

        await RunAsync(host.Port, "RESUME");
        int[] rows = await inTransaction.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(new[] { 1, 2, 3 }, rows);
        Assert.Equal(7, await unlocked.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(42, await next.WaitAsync(TimeSpan.FromSeconds(30)));
        await using (var opened = await opening.WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(8, await ScalarAsync<int>(opened, "select 8"));
        }

        await ExecAsync(busy, "commit");
        Assert.Equal(6, await ScalarAsync<int>(busy, "select 6"));

        state = await ShowAsync(host.Port, "SHOW STATE");
        Assert.Equal("no", state.Value(state.Single("key", "suspended"), "value"));
        Assert.Equal("yes", state.Value(state.Single("key", "active"), "value"));
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host, "/healthz")).Status);
    }

    [Fact]
    public async Task Suspend_IsRefusedWhileADatabaseIsPaused()
    {
        await using var host = StartProxy(_fixture.Primary);
        await RunAsync(host.Port, "PAUSE postgres");
        var refused = await PsqlAsync(host.Port, "SUSPEND");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("cannot suspend with paused databases", refused.StandardError, StringComparison.Ordinal);
        await RunAsync(host.Port, "RESUME");
        await RunAsync(host.Port, "SUSPEND");
        await RunAsync(host.Port, "RESUME");
    }

    private static async Task<int[]> RowsAsync(Npgsql.NpgsqlConnection conn, string sql)
    {
        await using var cmd = new Npgsql.NpgsqlCommand(sql, conn);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<int>();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetInt32(0));
        }

        return [.. rows];
    }

    [Fact]
    public async Task Suspend_IsRefusedToStatsUsers()
    {
        await using var host = StartProxy(_fixture.Primary);
        var result = await PsqlAsync(host.Port, "SUSPEND", Stats);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("permission denied", result.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WaitClose_ReturnsOnceTheServersAReconnectMarkedAreClosed()
    {
        await using var host = StartProxy(_fixture.Primary);
        var holder = await host.OpenAsync();
        int oldPid = await ScalarAsync<int>(holder, "select pg_backend_pid()");

        // Nothing to wait for: returns at once.
        await RunAsync(host.Port, "WAIT_CLOSE").WaitAsync(TimeSpan.FromSeconds(10));

        await RunAsync(host.Port, "RECONNECT postgres");
        var servers = await ShowAsync(host.Port, "SHOW SERVERS");
        Assert.Equal(1, servers.Int(servers.Single("remote_pid", oldPid.ToString(System.Globalization.CultureInfo.InvariantCulture)), "close_needed"));

        var waiting = RunAsync(host.Port, "WAIT_CLOSE postgres");
        await Task.Delay(500);
        Assert.False(waiting.IsCompleted, "WAIT_CLOSE returned while the client still holds the old server");

        // WAIT_CLOSE of another database does not wait for this one.
        await RunAsync(host.Port, "WAIT_CLOSE " + PostgresFixture.AppDatabase).WaitAsync(TimeSpan.FromSeconds(10));

        await holder.DisposeAsync();
        await waiting.WaitAsync(TimeSpan.FromSeconds(20));
        servers = await ShowAsync(host.Port, "SHOW SERVERS");
        Assert.Empty(servers.Where("remote_pid", oldPid.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }
}
