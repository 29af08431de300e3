using System.Diagnostics;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Operations;

/// <summary>A safe shutdown waits for clients, but only for shutdown_wait_timeout; who is left then gets 57P01.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ShutdownWaitTimeoutTests
{
    private const string Marker = "shutdown_wait_timeout test";

    private readonly PostgresFixture _fixture;

    public ShutdownWaitTimeoutTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Theory]
    [InlineData(PoolMode.Session)]
    [InlineData(PoolMode.Transaction)]
    public async Task ClientsStillConnectedAtTheTimeout_Get57P01(PoolMode mode)
    {
        await using var host = ProxyHost.Start(_fixture.Primary, c => c with { PoolMode = mode, ShutdownWaitTimeout = TimeSpan.FromSeconds(1) });
        await using var idle = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(idle, "select 1"));
        await using var busy = await host.OpenAsync();
        var longQuery = ScalarAsync<object>(busy, "select pg_sleep(60) /* " + Marker + " */");
        await Task.Delay(200);

        var sw = Stopwatch.StartNew();
        await host.Server.StopAsync(ShutdownMode.Safe).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.9), $"the shutdown did not wait for the clients ({sw.Elapsed})");

        // The client in the middle of a query is told at once; the idle one finds the error on its next use.
        var cut = await Assert.ThrowsAsync<PostgresException>(() => longQuery.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("57P01", cut.SqlState);
        var idleEx = await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync<int>(idle, "select 1"));
        Assert.Equal("57P01", (idleEx as PostgresException ?? idleEx.InnerException as PostgresException)?.SqlState);
        Assert.Contains(host.Logs, l => l.Contains("still connected after shutdown_wait_timeout", StringComparison.Ordinal));
        await EndLeftoverSleepAsync();
    }

    /// <summary>
    /// PostgreSQL notices a closed client socket only when the query ends, so the cut pg_sleep would run on for a
    /// minute on the shared server, where other tests look for sleeping backends: end it now.
    /// </summary>
    private async Task EndLeftoverSleepAsync()
    {
        await using var admin = new NpgsqlConnection(_fixture.SuperuserConnectionString());
        await admin.OpenAsync();
        for (int i = 0; i < 100; i++)
        {
            await using var cmd = new NpgsqlCommand(
                $"select count(pg_terminate_backend(pid)) from pg_stat_activity where query like '%{Marker}%' and pid <> pg_backend_pid()", admin);
            if (Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture) == 0)
            {
                return;
            }

            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task ClientsThatLeaveBeforeTheTimeout_EndTheShutdownEarly()
    {
        await using var host = ProxyHost.Start(_fixture.Primary, c => c with { ShutdownWaitTimeout = TimeSpan.FromSeconds(60) });
        var conn = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(conn, "select 1"));

        var stopping = host.Server.StopAsync(ShutdownMode.Safe);
        await Task.Delay(300);
        Assert.False(stopping.IsCompleted);
        Assert.Equal(2, await ScalarAsync<int>(conn, "select 2"));
        await conn.DisposeAsync();
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));
    }
}
