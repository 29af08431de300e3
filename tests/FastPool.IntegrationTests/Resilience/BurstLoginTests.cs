using FastPool.IntegrationTests.Infrastructure;
using Npgsql;

namespace FastPool.IntegrationTests.Resilience;

/// <summary>
/// Many clients logging in at once to a pool that has never had a server: only pool_size of them may hold
/// servers, and the others must still finish their login at once (with the first server's parameters), not
/// wait in line for a server they do not need yet.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class BurstLoginTests
{
    private readonly PostgresFixture _fixture;

    public BurstLoginTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task TwentyClientsAtOnce_OnAColdPoolOfTwo_AllLogIn_AndTheServerHasAtMostTwoConnections()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "burst");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { DefaultPoolSize = 2, QueryWaitTimeout = TimeSpan.FromSeconds(30) });

        var opens = Enumerable.Range(0, 20).Select(async _ =>
        {
            var conn = new NpgsqlConnection(proxy.ConnectionString(db.Name) + ";Server Compatibility Mode=NoTypeLoading");
            await conn.OpenAsync();
            return conn;
        }).ToArray();

        // All logins complete while at most two clients hold servers (none of them has run a query).
        var all = await Task.WhenAll(opens).WaitAsync(TimeSpan.FromSeconds(20));
        try
        {
            Assert.All(all, c => Assert.Equal(System.Data.ConnectionState.Open, c.State));
            var serverSide = await Backend.ScalarAsync<long>(_fixture.Primary,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", db.Name);
            Assert.InRange(serverSide, 1, 2);
        }
        finally
        {
            foreach (var c in all)
            {
                await c.DisposeAsync();
            }
        }

        // With the first clients gone, a new client gets a server and runs a query.
        await using var last = new NpgsqlConnection(proxy.ConnectionString(db.Name));
        await last.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT 42", last);
        Assert.Equal(42, (int)(await cmd.ExecuteScalarAsync())!);
    }
}
