using System.Diagnostics;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;

namespace FastPool.IntegrationTests.Resilience;

/// <summary>max_client_conn, pool size, query_wait_timeout, the reserve pool, and the per-database/per-user server limits.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PoolLimitTests
{
    private readonly PostgresFixture _fixture;

    public PoolLimitTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task MaxClientConn_ThirdClientGets53300_AndASlotFreesUp()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { MaxClientConn = 2 });
        var first = await proxy.OpenAsync();
        await using var second = await proxy.OpenAsync();

        var ex = await Assert.ThrowsAsync<PostgresException>(() => proxy.OpenAsync());
        Assert.Equal(PostgresErrorCodes.TooManyConnections, ex.SqlState);
        Assert.Contains("max_client_conn", ex.MessageText, StringComparison.Ordinal);

        await first.DisposeAsync();
        await Wait.UntilAsync(() => Task.FromResult(proxy.Server.ClientCount < 2), TimeSpan.FromSeconds(5), "first client's slot freed");
        await ProxyChecks.AssertServesAsync(proxy);
    }

    [Fact]
    public async Task MaxClientConn_full_still_lets_the_admin_console_in()
    {
        await using var proxy = Admin.AdminSupport.StartProxy(_fixture.Primary, c => c with { MaxClientConn = 2 });
        await using var first = await proxy.OpenAsync();
        await using var second = await proxy.OpenAsync();
        var ex = await Assert.ThrowsAsync<PostgresException>(() => proxy.OpenAsync());
        Assert.Equal(PostgresErrorCodes.TooManyConnections, ex.SqlState);

        // As in PgBouncer, the console stays reachable when clients fill max_client_conn.
        var pools = await Admin.AdminSupport.ShowAsync(proxy.Port, "SHOW POOLS");
        Assert.Equal("2", pools.Value(pools.Single("database", "postgres"), "cl_active"));
    }

    /// <summary>
    /// Clients beyond the pool size may finish their login at once (with the pool's cached server parameters,
    /// as PgBouncer does); they wait for a server at their first query, in arrival order.
    /// </summary>
    [Fact]
    public async Task PoolSizeOne_WaitingClientsAreServedInArrivalOrder()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "fifo");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { DefaultPoolSize = 1 });

        var a = await proxy.OpenAsync(db.Name);
        int pid = await ProxyChecks.BackendPidAsync(a);
        var b = await proxy.OpenAsync(db.Name).WaitAsync(TimeSpan.FromSeconds(10));
        var bQuery = ProxyChecks.BackendPidAsync(b);
        await Task.Delay(500);
        var c = await proxy.OpenAsync(db.Name).WaitAsync(TimeSpan.FromSeconds(10));
        var cQuery = ProxyChecks.BackendPidAsync(c);
        await Task.Delay(500);
        Assert.False(bQuery.IsCompleted, "B was served while A held the only server connection");
        Assert.False(cQuery.IsCompleted, "C was served while A held the only server connection");
        Assert.Equal(1L, await Backend.CountAsync(_fixture.Primary, db.Name));

        await a.DisposeAsync();
        Assert.Equal(pid, await bQuery.WaitAsync(TimeSpan.FromSeconds(10)));
        await Task.Delay(300);
        Assert.False(cQuery.IsCompleted, "C, which came after B, was served before B left");

        await b.DisposeAsync();
        Assert.Equal(pid, await cQuery.WaitAsync(TimeSpan.FromSeconds(10)));
        await c.DisposeAsync();
        Assert.Equal(1L, await Backend.CountAsync(_fixture.Primary, db.Name));
    }

    [Fact]
    public async Task QueryWaitTimeout_WaitingClientGetsError_AfterAboutOneSecond()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "qwt");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with
        {
            DefaultPoolSize = 1,
            QueryWaitTimeout = TimeSpan.FromSeconds(1),
        });

        await using var holder = await proxy.OpenAsync(db.Name);
        Assert.Equal(1, await ProxyChecks.ScalarAsync(holder, "select 1"));

        // The wait (and so the timeout) is at login or at the first query, depending on the pool's state.
        var sw = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var waiter = await proxy.OpenAsync(db.Name);
            await ProxyChecks.ScalarAsync(waiter, "select 1").WaitAsync(TimeSpan.FromSeconds(20));
        });
        sw.Stop();

        Assert.Contains("query_wait_timeout", ex.MessageText, StringComparison.Ordinal);
        Assert.Equal(PostgresErrorCodes.ProtocolViolation, ex.SqlState);
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.8), $"timed out early: {sw.Elapsed}");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(6), $"timed out late: {sw.Elapsed}");

        // The holder was not disturbed, and only one server connection was ever opened.
        Assert.Equal(1, await ProxyChecks.ScalarAsync(holder, "select 1"));
        Assert.Equal(1L, await Backend.CountAsync(_fixture.Primary, db.Name));
    }

    [Fact]
    public async Task ReservePool_SecondClientGetsExtraServer_AfterReservePoolTimeout()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "reserve");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with
        {
            DefaultPoolSize = 1,
            ReservePoolSize = 1,
            ReservePoolTimeout = TimeSpan.FromSeconds(0.5),
        });

        await using var first = await proxy.OpenAsync(db.Name);
        int firstPid = await ProxyChecks.BackendPidAsync(first);

        var sw = Stopwatch.StartNew();
        await using var second = await proxy.OpenAsync(db.Name).WaitAsync(TimeSpan.FromSeconds(20));
        int secondPid = await ProxyChecks.BackendPidAsync(second).WaitAsync(TimeSpan.FromSeconds(20));
        sw.Stop();
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.4), $"reserve used before reserve_pool_timeout: {sw.Elapsed}");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"reserve connection took {sw.Elapsed}");
        Assert.NotEqual(firstPid, secondPid);
        Assert.Equal(2L, await Backend.CountAsync(_fixture.Primary, db.Name));

        // Pool (1) + reserve (1) are both in use: a third client has nowhere to go.
        await using var third = await proxy.OpenAsync(db.Name).WaitAsync(TimeSpan.FromSeconds(20));
        var thirdQuery = ProxyChecks.ScalarAsync(third, "select 3");
        await Task.Delay(1200);
        Assert.False(thirdQuery.IsCompleted, "a third server connection was opened beyond pool_size + reserve_pool");
        Assert.Equal(2L, await Backend.CountAsync(_fixture.Primary, db.Name));
        await second.DisposeAsync();
        Assert.Equal(3, await thirdQuery.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task MaxDbConnections_SecondUserOfSameDatabase_WaitsThenTimesOut()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "maxdb");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with
        {
            MaxDbConnections = 1,
            QueryWaitTimeout = TimeSpan.FromSeconds(1),
        });

        await using var holder = await proxy.OpenAsync(db.Name, "postgres");
        var sw = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<PostgresException>(
            () => ProxyChecks.OpenAndScalarAsync(proxy, db.Name, PostgresFixture.AppUser, "select 1").WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("query_wait_timeout", ex.MessageText, StringComparison.Ordinal);
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.8) && sw.Elapsed < TimeSpan.FromSeconds(6), $"query_wait_timeout after {sw.Elapsed}");
        Assert.Equal(1L, await Backend.CountAsync(_fixture.Primary, db.Name));
        Assert.Equal(0L, await Backend.CountAsync(_fixture.Primary, db.Name, PostgresFixture.AppUser));
    }

    /// <summary>
    /// When the first user leaves, its server connection idles in its own pool. PgBouncer evicts such an
    /// idle connection (evict_connection) so a client of another pool under the same max_db_connections
    /// gets served; otherwise the limit starves every other user of the database until server_idle_timeout.
    /// </summary>
    [Fact]
    public async Task MaxDbConnections_SecondUserIsServed_WhenFirstUserLeaves()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "maxdbev");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with
        {
            MaxDbConnections = 1,
            QueryWaitTimeout = TimeSpan.FromSeconds(2),
        });

        var holder = await proxy.OpenAsync(db.Name, "postgres");
        Assert.Equal(1, await ProxyChecks.ScalarAsync(holder, "select 1"));
        var waiting = ProxyChecks.OpenAndScalarAsync(proxy, db.Name, PostgresFixture.AppUser, "select current_user::text");
        await Task.Delay(500);
        Assert.False(waiting.IsCompleted, "max_db_connections = 1 let a second server connection open");
        await holder.DisposeAsync();

        Assert.Equal(PostgresFixture.AppUser, await waiting.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.True(await Backend.CountAsync(_fixture.Primary, db.Name) <= 1, "more than max_db_connections server connections");
    }

    [Fact]
    public async Task MaxUserConnections_SameUserInSecondDatabase_WaitsThenTimesOut()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with
        {
            MaxUserConnections = 1,
            QueryWaitTimeout = TimeSpan.FromSeconds(1),
        });

        await using var holder = await proxy.OpenAsync(PostgresFixture.AppDatabase, PostgresFixture.AppUser);
        Assert.Equal(1, await ProxyChecks.ScalarAsync(holder, "select 1"));
        var sw = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<PostgresException>(
            () => ProxyChecks.OpenAndScalarAsync(proxy, PostgresFixture.OtherDatabase, PostgresFixture.AppUser, "select 1").WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("query_wait_timeout", ex.MessageText, StringComparison.Ordinal);
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.8) && sw.Elapsed < TimeSpan.FromSeconds(6), $"query_wait_timeout after {sw.Elapsed}");
        Assert.Equal(1, await ProxyChecks.ScalarAsync(holder, "select 1"));

        // Another user is not limited by app's max_user_connections.
        await ProxyChecks.AssertServesAsync(proxy, PostgresFixture.OtherDatabase, "postgres");
    }

    /// <summary>Same as for max_db_connections: PgBouncer evicts the user's idle connection in the other pool (evict_user_connection).</summary>
    [Fact]
    public async Task MaxUserConnections_SecondDatabaseIsServed_WhenFirstClientLeaves()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with
        {
            MaxUserConnections = 1,
            QueryWaitTimeout = TimeSpan.FromSeconds(2),
        });

        var holder = await proxy.OpenAsync(PostgresFixture.AppDatabase, PostgresFixture.AppUser);
        Assert.Equal(1, await ProxyChecks.ScalarAsync(holder, "select 1"));
        var waiting = ProxyChecks.OpenAndScalarAsync(proxy, PostgresFixture.OtherDatabase, PostgresFixture.AppUser, "select current_database()::text");
        await Task.Delay(500);
        Assert.False(waiting.IsCompleted, "max_user_connections = 1 let a second server connection open");
        await holder.DisposeAsync();

        Assert.Equal(PostgresFixture.OtherDatabase, await waiting.WaitAsync(TimeSpan.FromSeconds(20)));
    }
}
