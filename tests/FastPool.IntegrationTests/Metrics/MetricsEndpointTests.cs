using System.Net;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Admin.AdminSupport;
using static FastPool.IntegrationTests.Metrics.MetricsSupport;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Metrics;

/// <summary>/metrics and /healthz on metrics_listen, read as Prometheus and a load balancer read them.</summary>
[Collection(PostgresCollection.Name)]
public sealed class MetricsEndpointTests
{
    private readonly PostgresFixture _fixture;

    public MetricsEndpointTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Counters_MatchTheWorkDoneThroughTheProxy()
    {
        await using var host = StartWithMetrics(_fixture.Primary, c => c with { PoolMode = PoolMode.Transaction });
        var pool = new[] { ("database", PostgresFixture.AppDatabase), ("user", PostgresFixture.AppUser) };
        await using var conn = await host.OpenAsync(PostgresFixture.AppDatabase, PostgresFixture.AppUser);
        Assert.Equal(1, await ScalarAsync<int>(conn, "select 1"));

        // A baseline the warm-up no longer moves (its counters may land just after its answer, see below).
        var before = await ScrapeAsync(host);
        await WaitUntilAsync(async () =>
        {
            var last = before;
            await Task.Delay(200);
            before = await ScrapeAsync(host);
            return before.Value("fastpool_transactions_total", "fastpool_transactions_total", pool) == last.Value("fastpool_transactions_total", "fastpool_transactions_total", pool)
                && before.Value("fastpool_queries_total", "fastpool_queries_total", pool) == last.Value("fastpool_queries_total", "fastpool_queries_total", pool);
        }, "the warm-up is counted");
        const int n = 25;
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(i, await ScalarAsync<int>(conn, $"select {i}"));

            // The server pump hands the server back just after forwarding the answer; a next query that arrives in
            // between keeps the client on the same server (correct, but then no new assignment is counted). A pause
            // lets every transaction here take a server of its own, so the counts below are exact.
            await Task.Delay(10);
        }

        // One transaction block of three statements, each its own round trip.
        await Task.Delay(10);
        await ExecuteAsync(conn, "begin");
        Assert.Equal(7, await ScalarAsync<int>(conn, "select 7"));
        await ExecuteAsync(conn, "commit");

        // The pumps add to the counters right after forwarding a batch, so the client may read its last answer a
        // moment before they do: wait until the last transaction is in, then compare everything exactly.
        var after = await ScrapeAsync(host);
        await WaitUntilAsync(async () =>
        {
            after = await ScrapeAsync(host);
            return after.Value("fastpool_transactions_total", "fastpool_transactions_total", pool)
                - before.Value("fastpool_transactions_total", "fastpool_transactions_total", pool) >= n + 1;
        }, "the last transaction is counted");
        double Delta(string family, string? series = null) =>
            after.Value(family, series ?? family, pool) - before.Value(family, series ?? family, pool);

        Assert.Equal(n + 1, Delta("fastpool_transactions_total"));
        Assert.Equal(n + 3, Delta("fastpool_queries_total"));
        Assert.Equal(n + 1, Delta("fastpool_transaction_duration_seconds", "fastpool_transaction_duration_seconds_count"));
        Assert.Equal(n + 3, Delta("fastpool_query_duration_seconds", "fastpool_query_duration_seconds_count"));
        Assert.True(Delta("fastpool_query_duration_seconds", "fastpool_query_duration_seconds_sum") > 0);

        // Transaction pooling: the client is given a server once per transaction.
        Assert.Equal(n + 1, Delta("fastpool_server_assignments_total"));
        Assert.Equal(n + 1, Delta("fastpool_wait_seconds", "fastpool_wait_seconds_count"));
        Assert.True(Delta("fastpool_received_bytes_total") > n * 20, "bytes from the client");
        Assert.True(Delta("fastpool_sent_bytes_total") > n * 20, "bytes to the client");

        // Gauges: this one client is connected and idle, and its server goes back to the pool (just after the
        // client got its answer, so a scrape right away may still see it linked).
        Assert.Equal(1, after.Value("fastpool_pool_clients_active", "fastpool_pool_clients_active", pool));
        Assert.Equal(0, after.Value("fastpool_pool_clients_waiting", "fastpool_pool_clients_waiting", pool));
        await WaitUntilAsync(async () =>
        {
            var now = await ScrapeAsync(host);
            return now.Value("fastpool_pool_servers_active", "fastpool_pool_servers_active", pool) == 0
                && now.Value("fastpool_pool_servers_idle", "fastpool_pool_servers_idle", pool)
                    + now.Value("fastpool_pool_servers_used", "fastpool_pool_servers_used", pool) == 1;
        }, "the server is back in the pool");
        Assert.Equal(1, after.Value("fastpool_accepting", "fastpool_accepting"));
        Assert.True(after.Value("fastpool_allocated_bytes_total", "fastpool_allocated_bytes_total") > 0, "allocated bytes are reported");
        Assert.True(after.Value("fastpool_resident_memory_bytes", "fastpool_resident_memory_bytes") > 1 << 20, "resident memory is reported");

        // The console's SHOW STATS reads the same counters, xact_time included.
        var stats = await ShowAsync(host.Port, "SHOW STATS_TOTALS");
        var row = stats.Single("database", PostgresFixture.AppDatabase);
        Assert.Equal((long)after.Value("fastpool_transactions_total", "fastpool_transactions_total", pool), long.Parse(stats.Value(row, "xact_count"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(long.Parse(stats.Value(row, "xact_time"), System.Globalization.CultureInfo.InvariantCulture) > 0);
    }

    [Fact]
    public async Task Errors_AreCountedBySqlStateClass()
    {
        await using var host = StartWithMetrics(_fixture.Primary);
        await using var conn = await host.OpenAsync();
        var pool = new[] { ("database", "postgres"), ("user", "postgres") };

        var before = await ScrapeAsync(host);
        for (int i = 0; i < 3; i++)
        {
            var ex = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync<int>(conn, "select 1/0"));
            Assert.Equal("22012", ex.SqlState);
        }

        var missing = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync<int>(conn, "select * from no_such_table_here"));
        Assert.Equal("42P01", missing.SqlState);

        var after = await ScrapeAsync(host);
        double Errors(string sqlClass) =>
            after.Value("fastpool_errors_total", "fastpool_errors_total", [.. pool, ("class", sqlClass)])
            - before.Value("fastpool_errors_total", "fastpool_errors_total", [.. pool, ("class", sqlClass)]);
        Assert.Equal(3, Errors("22"));
        Assert.Equal(1, Errors("42"));
        Assert.Equal(1, await ScalarAsync<int>(conn, "select 1"));
    }

    [Fact]
    public async Task Healthz_Is503WhilePaused_And200AfterResume()
    {
        await using var host = StartWithMetrics(_fixture.Primary);
        var ok = await GetAsync(host, "/healthz");
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        Assert.Equal("ok\n", ok.Body);

        await RunAsync(host.Port, "PAUSE");
        var paused = await GetAsync(host, "/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, paused.Status);
        Assert.Equal("paused\n", paused.Body);
        Assert.Equal(0, (await ScrapeAsync(host)).Value("fastpool_accepting", "fastpool_accepting"));

        // Pausing one database leaves FastPool accepting for the others.
        await RunAsync(host.Port, "RESUME");
        await RunAsync(host.Port, "PAUSE postgres");
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host, "/healthz")).Status);
        await RunAsync(host.Port, "RESUME");
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host, "/healthz")).Status);
    }

    [Fact]
    public async Task Healthz_Is503WhileASafeShutdownWaitsForClients()
    {
        await using var host = StartWithMetrics(_fixture.Primary);
        var conn = await host.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(conn, "select 1"));

        var stopping = host.Server.StopAsync(ShutdownMode.Safe);
        await WaitUntilAsync(async () => (await GetAsync(host, "/healthz")).Status == HttpStatusCode.ServiceUnavailable, "/healthz reports the shutdown");
        Assert.Equal("shutting down\n", (await GetAsync(host, "/healthz")).Body);
        Assert.Equal(1, (await ScrapeAsync(host)).Value("fastpool_shutting_down", "fastpool_shutting_down"));

        // The connected client keeps working while FastPool waits for it.
        Assert.Equal(2, await ScalarAsync<int>(conn, "select 2"));
        Assert.False(stopping.IsCompleted);
        await conn.DisposeAsync();
        await stopping.WaitAsync(TimeSpan.FromSeconds(30));

        // Once stopped, nothing answers on the metrics port any more.
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => GetAsync(host, "/healthz"));
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task UnknownPaths_Get404_AndOtherMethods405()
    {
        await using var host = StartWithMetrics(_fixture.Primary);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(host, "/nothing")).Status);
        using var http = new HttpClient();
        using var post = await http.PostAsync(Url(host, "/metrics"), new StringContent("x"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host, "/metrics?name[]=x")).Status);
    }
}
