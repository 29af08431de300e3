using System.Diagnostics;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;

namespace FastPool.IntegrationTests.Resilience;

/// <summary>One backend dies (pg_terminate_backend from a direct connection) while the server itself stays up.</summary>
[Collection(PostgresCollection.Name)]
public sealed class BackendTerminatedTests
{
    private readonly PostgresFixture _fixture;

    public BackendTerminatedTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task TerminatedDuringQuery_ClientGets57P01_AndNextClientGetsFreshConnection()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "term");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { DefaultPoolSize = 1 });

        int victimPid;
        await using (var victim = await proxy.OpenAsync(db.Name))
        {
            victimPid = await ProxyChecks.BackendPidAsync(victim);
            await using var sleep = new NpgsqlCommand("select pg_sleep(20)", victim);
            var running = sleep.ExecuteNonQueryAsync();
            await Wait.UntilAsync(
                async () => await Backend.CountAsync(_fixture.Primary, db.Name, state: "active") > 0,
                TimeSpan.FromSeconds(10),
                "pg_sleep running");

            var sw = Stopwatch.StartNew();
            Assert.True(await Backend.TerminateAsync(_fixture.Primary, victimPid));
            var ex = await Assert.ThrowsAsync<PostgresException>(() => running.WaitAsync(TimeSpan.FromSeconds(15)));
            Assert.Equal(PostgresErrorCodes.AdminShutdown, ex.SqlState);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"57P01 arrived after {sw.Elapsed}");
        }

        // The dead server connection must not be handed out again (pool size 1: it would be the only candidate).
        await using var next = await proxy.OpenAsync(db.Name);
        var nextPid = await ProxyChecks.BackendPidAsync(next);
        Assert.NotEqual(victimPid, nextPid);
        Assert.Equal(1, await ProxyChecks.ScalarAsync(next, "select 1"));
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    [Fact]
    public async Task TerminatedWhileIdleInPool_WithServerCheckDelayZero_NextClientGetsWorkingConnection()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "check");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with
        {
            DefaultPoolSize = 1,
            ServerCheckDelay = TimeSpan.Zero,
            ServerCheckQuery = "select 1",
        });

        int pooledPid = await UseOnceAsync(proxy, db.Name);
        Assert.True(await Backend.TerminateAsync(_fixture.Primary, pooledPid));
        await Wait.UntilAsync(async () => !await Backend.IsBackendAliveAsync(_fixture.Primary, pooledPid), TimeSpan.FromSeconds(10), "terminated backend gone");

        // server_check_query finds the dead connection before the client sees it.
        await using var next = await proxy.OpenAsync(db.Name);
        Assert.NotEqual(pooledPid, await ProxyChecks.BackendPidAsync(next));
        Assert.Equal(1, await ProxyChecks.ScalarAsync(next, "select 1"));
        ProxyChecks.AssertNoUnexpectedErrors(proxy);
    }

    /// <summary>
    /// Same, with the default server_check_delay (30 s). PgBouncer watches idle server sockets and drops one
    /// as soon as the server closes it, so the next client never sees the dead connection.
    /// </summary>
    [Fact]
    public async Task TerminatedWhileIdleInPool_WithDefaultSettings_NextClientGetsWorkingConnection()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "idlekill");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { DefaultPoolSize = 1 });

        int pooledPid = await UseOnceAsync(proxy, db.Name);
        Assert.True(await Backend.TerminateAsync(_fixture.Primary, pooledPid));
        await Wait.UntilAsync(async () => !await Backend.IsBackendAliveAsync(_fixture.Primary, pooledPid), TimeSpan.FromSeconds(10), "terminated backend gone");
        await Task.Delay(200);

        await using var next = await proxy.OpenAsync(db.Name);
        Assert.Equal(1, await ProxyChecks.ScalarAsync(next, "select 1"));
        Assert.NotEqual(pooledPid, await ProxyChecks.BackendPidAsync(next));
    }

    /// <summary>One client session; returns its backend pid, which then idles in the pool.</summary>
    private async Task<int> UseOnceAsync(ProxyHost proxy, string database)
    {
        int pid;
        await using (var conn = await proxy.OpenAsync(database))
        {
            pid = await ProxyChecks.BackendPidAsync(conn);
        }

        // Back in the pool once server_reset_query (DISCARD ALL) has run on it.
        await Backend.WaitIdleInPoolAsync(_fixture.Primary, pid);
        return pid;
    }
}
