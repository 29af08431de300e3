using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;
using static FastPool.IntegrationTests.TransactionPooling.TransactionPoolingSupport;

namespace FastPool.IntegrationTests.TransactionPooling;

/// <summary>idle_transaction_timeout and client_idle_timeout close the client, as PgBouncer does.</summary>
[Collection(PostgresCollection.Name)]
public sealed class IdleTimeoutTests
{
    private readonly PostgresFixture _fixture;

    public IdleTimeoutTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Theory]
    [InlineData(PoolMode.Transaction)]
    [InlineData(PoolMode.Session)]
    public async Task IdleInTransaction_ClientClosed_WorkRolledBack(PoolMode mode)
    {
        var table = "public." + UniqueName("idle_tx");
        await Backend.ExecuteAsync(_fixture.Primary, $"create table {table} (id int)");
        await using var proxy = Start(_fixture.Primary, mode, poolSize: 1, c => c with { IdleTransactionTimeout = TimeSpan.FromMilliseconds(300) });
        await using var raw = await RawPgClient.ConnectAsync(proxy.Port);
        await raw.LoginAsync("postgres");
        Assert.DoesNotContain(await raw.QueryAsync($"begin; insert into {table} values (1)"), m => m.Type == 'E');

        var (messages, closed) = await raw.ReadUntilClosedAsync(TimeSpan.FromSeconds(15));
        Assert.True(closed, "the idle-in-transaction client was not closed");
        Assert.Equal("idle transaction timeout", Assert.Single(messages, m => m.Type == 'E').Text);

        await using var next = await OpenAsync(proxy);
        Assert.Equal(0L, await ScalarAsync(next, $"select count(*) from {table}"));
        await Backend.ExecuteAsync(_fixture.Primary, $"drop table {table}");
    }

    [Fact]
    public async Task IdleClient_Closed_ButNotWhileItsQueryRuns()
    {
        await using var proxy = Start(_fixture.Primary, PoolMode.Transaction, poolSize: 1, c => c with { ClientIdleTimeout = TimeSpan.FromMilliseconds(300) });
        await using var raw = await RawPgClient.ConnectAsync(proxy.Port);
        await raw.LoginAsync("postgres");

        // A query that runs longer than the timeout: the client waits for it, it is not idle.
        Assert.Equal("done", await raw.QueryScalarAsync("select 'done' from pg_sleep(0.8)"));

        var (messages, closed) = await raw.ReadUntilClosedAsync(TimeSpan.FromSeconds(15));
        Assert.True(closed, "the idle client was not closed");
        Assert.Equal("client_idle_timeout", Assert.Single(messages, m => m.Type == 'E').Text);
        await ProxyChecks.AssertServesAsync(proxy);
    }

    [Theory]
    [InlineData(PoolMode.Transaction)]
    [InlineData(PoolMode.Session)]
    public async Task A_query_running_past_query_timeout_ends_with_query_timeout_and_its_server_is_not_reused(PoolMode mode)
    {
        await using var proxy = Start(_fixture.Primary, mode, poolSize: 1, c => c with { QueryTimeout = TimeSpan.FromMilliseconds(500) });
        await using var raw = await RawPgClient.ConnectAsync(proxy.Port);
        await raw.LoginAsync("postgres");

        // Well under the limit: untouched.
        Assert.Equal("quick", await raw.QueryScalarAsync("select 'quick'"));
        var serverPid = await raw.QueryScalarAsync("select pg_backend_pid()");

        await raw.SendAsync(RawPgClient.Query("select 'slept' from pg_sleep(30)"));
        var (messages, closed) = await raw.ReadUntilClosedAsync(TimeSpan.FromSeconds(15));
        Assert.True(closed, "the client whose query ran past query_timeout was not closed");
        var error = Assert.Single(messages, m => m.Type == 'E');
        Assert.Equal("query_timeout", error.Text);
        Assert.Equal("08P01", error.SqlState);
        Assert.DoesNotContain(messages, m => m.Type == 'D');

        // The next client gets a fresh server, not the one still busy with the sleep.
        await using var next = await OpenAsync(proxy);
        Assert.NotEqual(serverPid, (await ScalarAsync(next, "select pg_backend_pid()"))!.ToString());
    }
}
