using System.Diagnostics;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Protocol;

/// <summary>FastPool's own BackendKeyData, and CancelRequest forwarded to the right server connection.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CancelTests
{
    private static readonly TimeSpan _generous = TimeSpan.FromSeconds(10);
    private readonly PostgresFixture _fixture;

    public CancelTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task BackendKeyData_IsFastPoolsOwn_NotTheServersPid()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var a = await proxy.OpenAsync();
        await using var b = await proxy.OpenAsync();

        var serverPidA = await ScalarAsync<int>(a, "select pg_backend_pid()");
        var serverPidB = await ScalarAsync<int>(b, "select pg_backend_pid()");
        Assert.NotEqual(serverPidA, a.ProcessID);
        Assert.NotEqual(serverPidB, b.ProcessID);
        Assert.NotEqual(a.ProcessID, b.ProcessID);
        Assert.NotEqual(serverPidA, serverPidB);

        // No backend on the server has the pid the client was given.
        Assert.Equal("0", await _fixture.Primary.PsqlAsync(
            $"select count(*) from pg_stat_activity where pid in ({Invariant(a.ProcessID)}, {Invariant(b.ProcessID)})"));
    }

    [Fact]
    public async Task CommandCancel_StopsRunningQuery_With57014_AndConnectionRunsNextQuery()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        var serverPid = await ScalarAsync<int>(conn, "select pg_backend_pid()");

        await using var cmd = new NpgsqlCommand("select pg_sleep(30)", conn);
        var sw = Stopwatch.StartNew();
        var running = cmd.ExecuteNonQueryAsync();
        await WaitUntilActiveAsync(_fixture.Primary, serverPid);
        cmd.Cancel();

        await AssertQueryCanceledAsync(running, _generous);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"cancel took {sw.Elapsed}");

        Assert.Equal(1, await ScalarAsync(conn, "select 1"));
        Assert.Equal(serverPid, await ScalarAsync<int>(conn, "select pg_backend_pid()"));
    }

    [Fact]
    public async Task CancellationToken_StopsRunningQuery_AndConnectionRunsNextQuery()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();

        var serverPid = await ScalarAsync<int>(conn, "select pg_backend_pid()");
        using var cts = new CancellationTokenSource();
        await using var cmd = new NpgsqlCommand("select pg_sleep(30)", conn);
        var running = cmd.ExecuteNonQueryAsync(cts.Token);
        await WaitUntilActiveAsync(_fixture.Primary, serverPid);
        await cts.CancelAsync();
        var ex = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running.WaitAsync(_generous));
        var pg = Assert.IsType<PostgresException>(ex.InnerException);
        Assert.Equal(PostgresErrorCodes.QueryCanceled, pg.SqlState);

        Assert.Equal(1, await ScalarAsync(conn, "select 1"));
    }

    [Fact]
    public async Task Cancel_HitsOnlyTheClientItWasSentFor()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var victim = await proxy.OpenAsync();
        await using var bystander = await proxy.OpenAsync();
        var victimPid = await ScalarAsync<int>(victim, "select pg_backend_pid()");
        var bystanderPid = await ScalarAsync<int>(bystander, "select pg_backend_pid()");

        await using var longCmd = new NpgsqlCommand("select pg_sleep(30)", victim);
        await using var shortCmd = new NpgsqlCommand("select 'survived' from pg_sleep(3)", bystander);
        var victimTask = longCmd.ExecuteNonQueryAsync();
        var bystanderTask = shortCmd.ExecuteScalarAsync();
        try
        {
            await WaitUntilActiveAsync(_fixture.Primary, victimPid);
            await WaitUntilActiveAsync(_fixture.Primary, bystanderPid);

            longCmd.Cancel();
            await AssertQueryCanceledAsync(victimTask, _generous);
            Assert.Equal("survived", await bystanderTask.WaitAsync(_generous));
            Assert.Equal(1, await ScalarAsync(victim, "select 1"));
        }
        finally
        {
            // Never dispose a connection with a command still in flight, even when an assertion failed.
            await Task.WhenAll(victimTask, bystanderTask).WaitAsync(TimeSpan.FromSeconds(35)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    [Fact]
    public async Task CancelWhileIdle_IsHarmless()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await using var cmd = new NpgsqlCommand("select 1", conn);
        await cmd.ExecuteScalarAsync();

        // Nothing runs: PostgreSQL ignores a cancel for an idle backend, and so must the next query.
        cmd.Cancel();
        await Task.Delay(300);
        Assert.Equal(2, await ScalarAsync(conn, "select 2"));
    }
}
