using FastPool.IntegrationTests.Infrastructure;
using Npgsql;

namespace FastPool.IntegrationTests.Resilience;

/// <summary>A client that leaves while waiting for a server (inside reserve_pool_timeout) must not take a server with it.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ReservePoolWaiterTests
{
    private readonly PostgresFixture _fixture;

    public ReservePoolWaiterTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task ClientLeavingDuringReserveWait_DoesNotSwallowTheNextFreeServer()
    {
        await using var db = await TempDatabase.CreateAsync(_fixture.Primary, "resleave");
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with
        {
            DefaultPoolSize = 1,
            ReservePoolSize = 1,
            ReservePoolTimeout = TimeSpan.FromSeconds(30),
            QueryWaitTimeout = TimeSpan.FromSeconds(4),
        });

        var holder = new NpgsqlConnection(proxy.ConnectionString(db.Name));
        await holder.OpenAsync();
        await using (var cmd = new NpgsqlCommand("SELECT 1", holder))
        {
            await cmd.ExecuteScalarAsync();
        }

        // A raw client logs in, asks for a server (the pool is full, so it waits) and then disconnects.
        var leaver = await RawPgClient.ConnectAsync(proxy.Port);
        await leaver.LoginAsync(db.Name);
        await leaver.SendAsync(RawPgClient.Query("SELECT 1"));
        await Task.Delay(300);
        await leaver.DisposeAsync();
        await Task.Delay(300);

        // The holder leaves: its server must go to the next real client, not to the one that left.
        await holder.DisposeAsync();
        await using var next = new NpgsqlConnection(proxy.ConnectionString(db.Name));
        await next.OpenAsync();
        await using var query = new NpgsqlCommand("SELECT 7", next);
        Assert.Equal(7, (int)(await query.ExecuteScalarAsync())!);
    }
}
