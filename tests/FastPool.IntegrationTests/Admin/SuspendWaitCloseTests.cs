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

    [Fact]
    public async Task Suspend_ReturnsAtOnce_HoldsTheNextTransactionUntilResume()
    {
        await using var host = StartWithMetrics(_fixture.Primary, c => c with { PoolMode = PoolMode.Transaction });
        await using var idle = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(idle, "select 1"));

        // A transaction under way does not keep SUSPEND waiting (PAUSE would), and it can finish.
        await using var busy = await host.OpenAsync(PostgresFixture.AppDatabase, PostgresFixture.AppUser);
        await using (var begin = new Npgsql.NpgsqlCommand("begin", busy))
        {
            await begin.ExecuteNonQueryAsync();
        }

        await RunAsync(host.Port, "SUSPEND").WaitAsync(TimeSpan.FromSeconds(10));
        var state = await ShowAsync(host.Port, "SHOW STATE");
        Assert.Equal("yes", state.Value(state.Single("key", "suspended"), "value"));
        var health = await GetAsync(host, "/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.Status);
        Assert.Equal("suspended\n", health.Body);

        Assert.Equal(5, await ScalarAsync<int>(busy, "select 5"));
        await using (var commit = new Npgsql.NpgsqlCommand("commit", busy))
        {
            await commit.ExecuteNonQueryAsync();
        }

        // The next transaction waits for RESUME.
        var held = ScalarAsync<int>(idle, "select 42");
        await WaitUntilAsync(async () =>
        {
            var pools = await ShowAsync(host.Port, "SHOW POOLS");
            return pools.Int(pools.Single("database", "postgres"), "cl_waiting") == 1;
        }, "the transaction waits while suspended");
        await Task.Delay(300);
        Assert.False(held.IsCompleted);

        var again = await PsqlAsync(host.Port, "SUSPEND");
        Assert.NotEqual(0, again.ExitCode);
        Assert.Contains("already suspended", again.StandardError, StringComparison.Ordinal);

        await RunAsync(host.Port, "RESUME");
        Assert.Equal(42, await held.WaitAsync(TimeSpan.FromSeconds(30)));
        state = await ShowAsync(host.Port, "SHOW STATE");
        Assert.Equal("no", state.Value(state.Single("key", "suspended"), "value"));
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host, "/healthz")).Status);
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
