using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Routing.Classification;
using Npgsql;
using static FastPool.IntegrationTests.Cache.CacheSupport;

namespace FastPool.IntegrationTests.Cache;

/// <summary>
/// Every kind of write FastPool sees removes the cached results that read its table: the next read returns what the
/// server has now. Each case first proves the read was cached (the hit counter moves), so a pass is not a cache
/// that never hit.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CacheInvalidationTests
{
    private readonly PostgresFixture _fixture;

    public CacheInvalidationTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Each_write_kind_invalidates_the_results_that_read_its_table()
    {
        const string Reset = "drop table if exists qc_w; create table qc_w (id int primary key, v int); insert into qc_w values (1, 10), (2, 20)";
        await DirectAsync(_fixture, Reset);
        await using var host = Start(_fixture.Primary);
        await using var conn = await OpenAsync(host);
        const string Sum = "select coalesce(sum(v), 0) || '/' || count(*) from qc_w";

        await CachedThenFreshAsync(host, conn, Sum, "30/2", "insert into qc_w values (3, 30)", "60/3");
        await CachedThenFreshAsync(host, conn, Sum, "60/3", "update qc_w set v = v + 1 where id = 1", "61/3");
        await CachedThenFreshAsync(host, conn, Sum, "61/3", "delete from qc_w where id = 3", "31/2");
        await CachedThenFreshAsync(host, conn, Sum, "31/2",
            "merge into qc_w t using (select 9 as id) s on t.id = s.id when not matched then insert values (s.id, 9)", "40/3");
        await CachedThenFreshAsync(host, conn, Sum, "40/3", "truncate qc_w", "0/0");
        await CachedThenFreshAsync(host, conn, Sum, "0/0", async () =>
        {
            await using var import = await conn.BeginTextImportAsync("copy qc_w (id, v) from stdin");
            await import.WriteAsync("1\t5\n2\t6\n");
        }, "11/2");

        const string Row = "select * from qc_w where id = 1";
        await CachedThenFreshAsync(host, conn, Row, "1|5", "alter table qc_w add column extra int default 7", "1|5|7");
        await CachedThenFreshAsync(host, conn, Row, "1|5|7", "drop table qc_w; create table qc_w (id int, v int); insert into qc_w values (1, 100)", "1|100");

        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task A_write_function_and_the_simple_protocol_invalidate_too()
    {
        await DirectAsync(_fixture, "drop table if exists qc_f cascade; create table qc_f (v int); insert into qc_f values (1);"
            + " create or replace function qc_f_bump() returns int language sql as 'update qc_f set v = v + 1 returning 1'");
        await using var host = ProxyHost.Start(_fixture.Primary, c => c with
        {
            PoolMode = Proxy.Configuration.PoolMode.Transaction,
            DefaultPoolSize = 1,
            FastPool = c.FastPool with
            {
                Cache = new Proxy.Configuration.CacheSettings { Enabled = true },
                Routing = c.FastPool.Routing with
                {
                    Classifier = new ClassifierOptions { WriteFunctions = new FunctionList(ClassifierOptions.DefaultWriteNames.Append("qc_f_bump")) },
                },
            },
        });
        await using var conn = await OpenAsync(host);
        await CachedThenFreshAsync(host, conn, "select v from qc_f", "1", "select qc_f_bump()", "2");

        // psql sends the simple protocol: a Query message, answered from the cache the second time.
        var first = await Cli.FastPoolProcess.PsqlAsync(host.Port, "select v from qc_f");
        Assert.Equal("2", first.Stdout.Trim());
        long hits = host.Server.CacheStats.Hits;
        var second = await Cli.FastPoolProcess.PsqlAsync(host.Port, "select v from qc_f");
        Assert.Equal("2", second.Stdout.Trim());
        Assert.Equal(hits + 1, host.Server.CacheStats.Hits);
        var write = await Cli.FastPoolProcess.PsqlAsync(host.Port, "update qc_f set v = 3");
        Assert.Equal(0, write.ExitCode);
        Assert.Equal("3", (await Cli.FastPoolProcess.PsqlAsync(host.Port, "select v from qc_f")).Stdout.Trim());
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task Writes_of_session_pooling_clients_invalidate_what_transaction_pooling_clients_cached()
    {
        await DirectAsync(_fixture, "drop table if exists qc_mixed; create table qc_mixed (v int); insert into qc_mixed values (1)");
        await using var host = ProxyHost.Start(_fixture.Primary, c => c with
        {
            PoolMode = Proxy.Configuration.PoolMode.Session,
            Users = new Dictionary<string, Proxy.Configuration.UserConfig>(StringComparer.Ordinal)
            {
                ["postgres"] = new() { Name = "postgres", PoolMode = Proxy.Configuration.PoolMode.Transaction },
            },
            FastPool = c.FastPool with { Cache = new Proxy.Configuration.CacheSettings { Enabled = true } },
        });
        await using var pooled = await OpenAsync(host);
        await using var session = await OpenAsync(host, user: PostgresFixture.AppUser);
        await DirectAsync(_fixture, "grant all on qc_mixed to app");
        await CachedThenFreshAsync(host, pooled, "select v from qc_mixed", "1", () => ExecAsync(session, "update qc_mixed set v = 2"), "2");
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    /// <summary>
    /// A prepared (named) write runs again with a Bind alone, which carries no text: each run must still invalidate.
    /// The writer and the reader are two clients of one transaction-pooling proxy (FastPool keeps the writer's statement).
    /// </summary>
    [Fact]
    public async Task A_prepared_write_invalidates_every_time_it_runs()
    {
        await DirectAsync(_fixture, "drop table if exists qc_p; create table qc_p (id int primary key, v int); insert into qc_p values (1, 0)");
        await using var host = Start(_fixture.Primary);
        await using var reader = await OpenAsync(host);
        await using var writer = await OpenAsync(host);
        await using var bump = new NpgsqlCommand("update qc_p set v = v + 1 where id = 1", writer);
        await bump.PrepareAsync();
        const string Read = "select v from qc_p where id = 1";
        for (int run = 1; run <= 3; run++)
        {
            string before = (run - 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(before, await RowTextAsync(reader, Read));
            long hits = host.Server.CacheStats.Hits;
            Assert.Equal(before, await RowTextAsync(reader, Read));
            Assert.True(host.Server.CacheStats.Hits == hits + 1, $"run {run}: the read was not answered from the cache");
            Assert.Equal(1, await bump.ExecuteNonQueryAsync());
            Assert.Equal(run.ToString(System.Globalization.CultureInfo.InvariantCulture), await RowTextAsync(reader, Read));
        }
    }

    /// <summary>
    /// A partitioned table: a write to a partition must reach what read the parent, and a write through the parent
    /// what read a partition (each cached entry depends on its whole partition tree, as the catalog gives it).
    /// </summary>
    [Fact]
    public async Task Writes_to_a_partition_invalidate_reads_of_its_parent_and_the_other_way_round()
    {
        await DirectAsync(_fixture, "drop table if exists qc_part cascade; create table qc_part (id int, v int) partition by range (id);"
            + " create table qc_part_1 partition of qc_part for values from (0) to (100);"
            + " create table qc_part_2 partition of qc_part for values from (100) to (200);"
            + " insert into qc_part values (1, 10), (150, 20)");
        await using var host = Start(_fixture.Primary);
        await using var conn = await OpenAsync(host);
        const string Parent = "select sum(v) from qc_part";
        const string Partition = "select sum(v) from qc_part_1";

        await CachedThenFreshAsync(host, conn, Parent, "30", "insert into qc_part_2 values (160, 5)", "35");
        await CachedThenFreshAsync(host, conn, Parent, "35", "update qc_part_1 set v = 11", "36");
        await CachedThenFreshAsync(host, conn, Partition, "11", "update qc_part set v = 12 where id = 1", "12");
        await CachedThenFreshAsync(host, conn, Partition, "12", "delete from qc_part where id = 1", "<null>");

        // A partition created after the parent's result was cached: writes to it reach that result too.
        await CachedThenFreshAsync(host, conn, Parent, "25", "create table qc_part_3 partition of qc_part for values from (200) to (300)", "25");
        await CachedThenFreshAsync(host, conn, Parent, "25", "insert into qc_part_3 values (250, 100)", "125");
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    private static Task CachedThenFreshAsync(ProxyHost host, NpgsqlConnection conn, string read, string before, string write, string after) =>
        CachedThenFreshAsync(host, conn, read, before, () => ExecAsync(conn, write), after);

    private static async Task CachedThenFreshAsync(ProxyHost host, NpgsqlConnection conn, string read, string before, Func<Task> write, string after)
    {
        Assert.Equal(before, await RowTextAsync(conn, read));
        await RepeatUntilHitAsync(host, conn, read, before);
        await write();
        Assert.Equal(after, await RowTextAsync(conn, read));
    }

    /// <summary>
    /// Reads <paramref name="read"/> again until the cache answers it (at most four times). The precondition of a test
    /// about what comes next: a repeat that slipped past the cache on a loaded machine (the sockets transport had a
    /// window in which the client's next request could reach the server before it was handed back; closed since, and
    /// QueryCacheTests checks every repeat) must not fail a test about invalidation.
    /// </summary>
    internal static async Task RepeatUntilHitAsync(ProxyHost host, NpgsqlConnection conn, string read, string expected)
    {
        bool hit = false;
        for (int attempt = 0; attempt < 4 && !hit; attempt++)
        {
            long hits = host.Server.CacheStats.Hits;
            Assert.Equal(expected, await RowTextAsync(conn, read));
            hit = host.Server.CacheStats.Hits == hits + 1;
        }

        Assert.True(hit, $"'{read}' was not answered from the cache");
    }

    /// <summary>The first row's columns joined with '|'.</summary>
    internal static async Task<string> RowTextAsync(NpgsqlConnection conn, string sql, params object[] parameters)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        await using var reader = await cmd.ExecuteReaderAsync();
        if (!await reader.ReadAsync())
        {
            return "<none>";
        }

        var values = new string[reader.FieldCount];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = reader.IsDBNull(i) ? "<null>" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)!;
        }

        return string.Join('|', values);
    }
}
