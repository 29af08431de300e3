using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Metrics;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using static FastPool.IntegrationTests.Cache.CacheInvalidationTests;
using static FastPool.IntegrationTests.Cache.CacheSupport;

namespace FastPool.IntegrationTests.Cache;

/// <summary>SHOW POOL_CACHE, PURGE CACHE and the cache counters on /metrics, as an operator reads them.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CacheAdminTests
{
    private readonly PostgresFixture _fixture;

    public CacheAdminTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Show_pool_cache_purge_cache_and_metrics_report_the_cache()
    {
        await DirectAsync(_fixture, "drop table if exists qc_adm1, qc_adm2; create table qc_adm1 (v int); create table qc_adm2 (v int); insert into qc_adm1 values (1); insert into qc_adm2 values (2)");
        await using var host = MetricsSupport.StartWithMetrics(_fixture.Primary, c => c with
        {
            PoolMode = PoolMode.Transaction,
            FastPool = c.FastPool with { Cache = new CacheSettings { Enabled = true } },
        });
        await using var conn = await OpenAsync(host);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal("1", await RowTextAsync(conn, "select v from qc_adm1"));
            Assert.Equal("2", await RowTextAsync(conn, "select v from qc_adm2"));
        }

        var show = await AdminSupport.ShowAsync(host.Port, "SHOW POOL_CACHE");
        var row = Assert.Single(show.Rows);
        Assert.Equal("1", show.Value(row, "enabled"));
        Assert.Equal("4", show.Value(row, "hits"));
        // Npgsql's own type lookup at login (a catalog read: a miss, never stored) counts too.
        Assert.True(show.Int(row, "misses") >= 2);
        Assert.Equal("2", show.Value(row, "entries"));
        Assert.True(long.Parse(show.Value(row, "bytes"), System.Globalization.CultureInfo.InvariantCulture) > 0);

        var purge = await AdminSupport.PsqlAsync(host.Port, "PURGE CACHE qc_adm1");
        Assert.Contains("PURGE 1", purge.StandardOutput + purge.StandardError, StringComparison.Ordinal);
        show = await AdminSupport.ShowAsync(host.Port, "SHOW POOL_CACHE");
        Assert.Equal("1", show.Value(show.Rows[0], "entries"));
        await AdminSupport.PsqlAsync(host.Port, "PURGE CACHE");
        show = await AdminSupport.ShowAsync(host.Port, "SHOW POOL_CACHE");
        Assert.Equal("0", show.Value(show.Rows[0], "entries"));

        var metrics = await MetricsSupport.ScrapeAsync(host);
        Assert.True(metrics.ContainsKey("fastpool_cache_hits_total"));
        Assert.True(metrics.ContainsKey("fastpool_cache_misses_total"));
        Assert.Contains("fastpool_cache_entries", metrics.Keys);
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }
}
