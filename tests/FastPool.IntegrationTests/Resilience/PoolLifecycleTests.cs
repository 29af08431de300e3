using System.Diagnostics;
using FastPool.IntegrationTests.Infrastructure;

namespace FastPool.IntegrationTests.Resilience;

/// <summary>min_pool_size, server_lifetime and server_idle_timeout, observed in pg_stat_activity on the backend.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PoolLifecycleTests
{
    private readonly PostgresFixture _fixture;

    public PoolLifecycleTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task MinPoolSize_PoolIsFilledWithoutClients()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "minpool");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { MinPoolSize = 2 });

        // Pools are created by the first login; after that, min_pool_size is kept up with nobody connected.
        await ProxyChecks.AssertServesAsync(proxy, db.Name);
        await Wait.UntilAsync(() => Task.FromResult(proxy.Server.ClientCount == 0), TimeSpan.FromSeconds(5), "client gone");

        await Wait.UntilAsync(
            async () => await Backend.CountAsync(_fixture.Primary, db.Name, "postgres") >= 2,
            TimeSpan.FromSeconds(5),
            ">= 2 server connections for min_pool_size = 2");
        Assert.Equal(0, proxy.Server.ClientCount);

        // And it does not overshoot.
        await Task.Delay(1500);
        Assert.Equal(2L, await Backend.CountAsync(_fixture.Primary, db.Name, "postgres"));
    }

    [Fact]
    public async Task ServerLifetime_ExpiredConnectionIsReplaced()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "lifetime");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { ServerLifetime = TimeSpan.FromSeconds(1) });

        int firstPid;
        await using (var first = await proxy.OpenAsync(db.Name))
        {
            firstPid = await ProxyChecks.BackendPidAsync(first);
        }

        await Task.Delay(2000);
        await using var second = await proxy.OpenAsync(db.Name);
        Assert.NotEqual(firstPid, await ProxyChecks.BackendPidAsync(second));

        // The old server connection was closed, not just set aside.
        await Wait.UntilAsync(async () => !await Backend.IsBackendAliveAsync(_fixture.Primary, firstPid), TimeSpan.FromSeconds(5), $"expired backend {firstPid} gone");
        Assert.Equal(1L, await Backend.CountAsync(_fixture.Primary, db.Name));
    }

    [Fact]
    public async Task ServerIdleTimeout_IdleConnectionsAreClosed()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "idle");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { ServerIdleTimeout = TimeSpan.FromSeconds(1) });

        var a = await proxy.OpenAsync(db.Name);
        var b = await proxy.OpenAsync(db.Name);
        int pidA = await ProxyChecks.BackendPidAsync(a);
        int pidB = await ProxyChecks.BackendPidAsync(b);
        Assert.NotEqual(pidA, pidB);
        await a.DisposeAsync();
        await b.DisposeAsync();
        await Backend.WaitIdleInPoolAsync(_fixture.Primary, pidA);
        await Backend.WaitIdleInPoolAsync(_fixture.Primary, pidB);
        Assert.Equal(2L, await Backend.CountAsync(_fixture.Primary, db.Name));

        var sw = Stopwatch.StartNew();
        await Wait.UntilAsync(
            async () => await Backend.CountAsync(_fixture.Primary, db.Name) == 0,
            TimeSpan.FromSeconds(6),
            "idle server connections closed after server_idle_timeout = 1 s");
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.5), $"closed too early: {sw.Elapsed}");
        await ProxyChecks.AssertServesAsync(proxy, db.Name);
    }
}
