using FastPool.IntegrationTests.Cli;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using static FastPool.IntegrationTests.Cache.CacheInvalidationTests;
using static FastPool.IntegrationTests.Cache.CacheSupport;

namespace FastPool.IntegrationTests.Cache;

/// <summary>
/// <c>fastpool cache install-triggers</c>, run as an operator would, and writes made directly on the server (not
/// through FastPool) then invalidating the cache through the triggers' notifications.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CacheTriggerTests
{
    private readonly PostgresFixture _fixture;

    public CacheTriggerTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task A_direct_write_on_the_server_invalidates_through_the_installed_triggers()
    {
        await DirectAsync(_fixture, "drop table if exists qc_trig; create table qc_trig (v int); insert into qc_trig values (1)", PostgresFixture.OtherDatabase);
        var dir = Directory.CreateTempSubdirectory("fastpool-trig-").FullName;
        try
        {
            var ini = Path.Combine(dir, "pgbouncer.ini");
            await File.WriteAllTextAsync(ini, $"[databases]\n{PostgresFixture.OtherDatabase} = host={_fixture.Primary.Host} port={_fixture.Primary.Port} user=postgres\n[pgbouncer]\nauth_type = trust\n");
            var install = await FastPoolProcess.RunToExitAsync(["cache", "install-triggers", PostgresFixture.OtherDatabase, "--config", ini], TimeSpan.FromSeconds(60));
            Assert.True(install.ExitCode == 0, install.Describe());
            Assert.Contains("installed cache invalidation triggers", install.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        await using var host = Start(_fixture.Primary);
        await using var conn = await OpenAsync(host, PostgresFixture.OtherDatabase);
        Assert.Equal("1", await RowTextAsync(conn, "select sum(v) from qc_trig"));
        await RepeatUntilHitAsync(host, conn, "select sum(v) from qc_trig", "1");

        // The listener connects in the background after the first cached result: wait until it listens.
        await WaitUntilAsync(async () =>
        {
            await using var probe = new Npgsql.NpgsqlConnection(_fixture.SuperuserConnectionString(PostgresFixture.OtherDatabase));
            await probe.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("select count(*) from pg_stat_activity where query = 'LISTEN fastpool_cache_invalidate'", probe);
            return (long)(await cmd.ExecuteScalarAsync())! > 0;
        });

        // A write made directly on the server, and one rolled back (which notifies nothing and changes nothing).
        await DirectAsync(_fixture, "begin; update qc_trig set v = 100; rollback", PostgresFixture.OtherDatabase);
        await DirectAsync(_fixture, "update qc_trig set v = 2", PostgresFixture.OtherDatabase);
        await WaitUntilAsync(async () => await RowTextAsync(conn, "select sum(v) from qc_trig") == "2");
        Assert.True(host.Server.CacheStats.Invalidations > 0);
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    /// <summary>Polls a condition that becomes true after an asynchronous notification; fails after 10 s.</summary>
    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not become true within 10 s");
            await Task.Delay(20);
        }
    }
}
