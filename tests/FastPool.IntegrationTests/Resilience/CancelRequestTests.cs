using System.Diagnostics;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;

namespace FastPool.IntegrationTests.Resilience;

/// <summary>CancelRequest packets (16 bytes on a fresh connection) must only cancel with the exact key the proxy handed out.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CancelRequestTests
{
    private readonly PostgresFixture _fixture;

    public CancelRequestTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    public enum BadKey
    {
        WrongSecret,
        UnknownProcessId,
        ZeroProcessId,
    }

    [Theory]
    [InlineData(BadKey.WrongSecret)]
    [InlineData(BadKey.UnknownProcessId)]
    [InlineData(BadKey.ZeroProcessId)]
    public async Task CancelWithWrongKey_CancelsNothing(BadKey bad)
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        int proxyPid = conn.ProcessID;

        await using var sleep = new NpgsqlCommand("select 'done' from pg_sleep(1)", conn);
        var sw = Stopwatch.StartNew();
        var running = sleep.ExecuteScalarAsync();
        await Task.Delay(200);

        var (pid, key) = bad switch
        {
            // The real pid with made-up secrets (a few of them; hitting the real one is a 1 in 2^32 chance).
            BadKey.WrongSecret => (proxyPid, 0),
            BadKey.UnknownProcessId => (proxyPid ^ 0x5A5A5A, 12345),
            _ => (0, 0),
        };
        int attempts = bad == BadKey.WrongSecret ? 3 : 1;
        for (int i = 0; i < attempts; i++)
        {
            await using var canceller = await RawPgClient.ConnectAsync(proxy.Port);
            await canceller.SendAsync(RawPgClient.CancelRequest(pid, key + i));
            var (messages, closed) = await canceller.ReadUntilClosedAsync(TimeSpan.FromSeconds(5));
            Assert.Empty(messages);
            Assert.True(closed, "the proxy did not close the cancel connection");
        }

        Assert.Equal("done", await running.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.9), $"pg_sleep(1) ended early ({sw.Elapsed}): was it cancelled?");
        Assert.Equal(1, await ProxyChecks.ScalarAsync(conn, "select 1"));
        await ProxyChecks.AssertServesAsync(proxy);
    }

    /// <summary>The control: the right key (Npgsql's own cancel, through the proxy) does cancel.</summary>
    [Fact]
    public async Task CancelWithRightKey_Cancels()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await using var sleep = new NpgsqlCommand("select pg_sleep(10)", conn);
        var running = sleep.ExecuteNonQueryAsync();
        await Task.Delay(300);

        var sw = Stopwatch.StartNew();
        sleep.Cancel();
        // Npgsql reports its own Cancel() as OperationCanceledException wrapping the server's 57014.
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => running.WaitAsync(TimeSpan.FromSeconds(15)));
        var pg = ex as PostgresException ?? ex.InnerException as PostgresException;
        Assert.True(pg is not null, $"expected a PostgresException (57014), got {ex}");
        Assert.Equal(PostgresErrorCodes.QueryCanceled, pg.SqlState);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"cancel took {sw.Elapsed}");
        Assert.Equal(1, await ProxyChecks.ScalarAsync(conn, "select 1"));
    }
}
