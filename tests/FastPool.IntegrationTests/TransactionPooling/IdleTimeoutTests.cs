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
}
