using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Metrics;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Failover.FailoverChecks;

namespace FastPool.IntegrationTests.Failover;

/// <summary>
/// Session pooling, two entries over the same two servers (listed in opposite orders), and no periodic checks at
/// all: the only thing that can notice the primary's death is the session that loses its server. That one loss is
/// confirmed once and applied to both entries, which both move to the one promoted standby.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class SharedServerFailoverTests
{
    [Fact]
    public async Task SessionModeClientLosingThePrimary_FailsOverEveryEntryListingIt_WithNoPeriodicCheck()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        await cluster.Primary.PsqlAsync("CREATE TABLE shared_writes (entry text)");
        await using var proxy = cluster.StartProxy(c => c with
        {
            PoolMode = PoolMode.Session,
            Databases = [FailoverCluster.Entry("app", cluster.Primary, cluster.Standby), FailoverCluster.Entry("app_ro", cluster.Standby, cluster.Primary)],
            FastPool = c.FastPool with
            {
                MetricsListen = new ListenEndpoint("127.0.0.1", 0),

                // One round of checks at start (roles), then none: neither health checks nor replication checks.
                SrCheckPeriod = TimeSpan.Zero,
                Failover = FailoverCluster.FastHealthChecks with { HealthCheckPeriod = TimeSpan.Zero },
            },
        });
        await WaitForNodeAsync(proxy, "app", 0, "primary", "up");
        await WaitForNodeAsync(proxy, "app", 1, "standby", "up");
        await WaitForNodeAsync(proxy, "app_ro", 0, "standby", "up");
        await WaitForNodeAsync(proxy, "app_ro", 1, "primary", "up");

        // A session-mode client of "app" in the middle of a query when the primary dies; "app_ro" has no client.
        await using var victim = await proxy.OpenAsync("app");
        Assert.Equal(cluster.Primary.Port, await ServerPortAsync(victim));
        var sleeping = Task.Run(async () =>
        {
            await using var sleep = new NpgsqlCommand("SELECT pg_sleep(60)", victim);
            await sleep.ExecuteNonQueryAsync();
        });
        await Resilience.Wait.UntilAsync(
            async () => await cluster.Primary.PsqlAsync("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'") == "1",
            TimeSpan.FromSeconds(30),
            "the client's query runs on the primary");

        await cluster.Primary.KillAsync();

        // The session's query fails (it ran on the lost server: nothing can be replayed)...
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => sleeping);

        // ...and its loss alone fails both entries over to the same promoted standby.
        var app = await WaitForNodeAsync(proxy, "app", 1, "primary", "up", TimeSpan.FromSeconds(60));
        Assert.Equal("down", app.Value(Row(app, "app", 0), "status"));
        var appRo = await WaitForNodeAsync(proxy, "app_ro", 0, "primary", "up", TimeSpan.FromSeconds(60));
        Assert.Equal("down", appRo.Value(Row(appRo, "app_ro", 1), "status"));
        Assert.Contains("refused", appRo.Value(Row(appRo, "app_ro", 1), "last_change_reason"), StringComparison.OrdinalIgnoreCase);
        Assert.Equal("f", await cluster.Standby.PsqlAsync("SELECT pg_is_in_recovery()"));

        // One failover (one entry chose and promoted), which the other entry followed.
        var decided = proxy.Logs.Where(l => l.Contains("is the primary now", StringComparison.Ordinal)).ToList();
        Assert.True(decided.Count == 2, "expected one failover and one entry following it:\n" + string.Join('\n', proxy.Logs));
        Assert.Single(decided, l => l.Contains("as the failover of database", StringComparison.Ordinal));

        // /metrics shows the same states.
        var metrics = await MetricsSupport.ScrapeAsync(proxy);
        Assert.Equal(1, metrics.Value("fastpool_node_status", "fastpool_node_status", ("database", "app_ro"), ("node", "1"), ("status", "down")));
        Assert.Equal(1, metrics.Value("fastpool_node_role", "fastpool_node_role", ("database", "app_ro"), ("node", "0"), ("role", "primary")));
        Assert.True(metrics.Value("fastpool_node_last_change_timestamp_seconds", "fastpool_node_last_change_timestamp_seconds", ("database", "app_ro"), ("node", "1")) > 0);

        // New sessions of both entries write, on the promoted standby.
        foreach (var entry in new[] { "app", "app_ro" })
        {
            await using var conn = await proxy.OpenAsync(entry);
            await using var insert = new NpgsqlCommand("INSERT INTO shared_writes VALUES ($1)", conn);
            insert.Parameters.AddWithValue(entry);
            Assert.Equal(1, await insert.ExecuteNonQueryAsync());
            Assert.Equal(cluster.Standby.Port, await ServerPortAsync(conn));
        }

        Assert.Equal("app,app_ro", await cluster.Standby.PsqlAsync("SELECT string_agg(entry, ',' ORDER BY entry) FROM shared_writes"));
    }
}
