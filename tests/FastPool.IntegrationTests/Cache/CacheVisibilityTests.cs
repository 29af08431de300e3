using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using static FastPool.IntegrationTests.Cache.CacheInvalidationTests;
using static FastPool.IntegrationTests.Cache.CacheSupport;

namespace FastPool.IntegrationTests.Cache;

/// <summary>
/// What each client sees with the cache on is what the server would show it: its own uncommitted writes, its
/// snapshot in a REPEATABLE READ transaction, its rows under row-level security, its search_path, its parameters;
/// and functions whose value changes are never answered from the cache.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CacheVisibilityTests
{
    private readonly PostgresFixture _fixture;

    public CacheVisibilityTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Transactions_see_their_own_writes_and_snapshots_and_commit_or_rollback_is_respected()
    {
        await DirectAsync(_fixture, "drop table if exists qc_tx; create table qc_tx (v int); insert into qc_tx values (1)");
        await using var host = Start(_fixture.Primary, poolSize: 3);
        await using var writer = await OpenAsync(host);
        await using var other = await OpenAsync(host);
        await using var snapshot = await OpenAsync(host);
        const string Read = "select v from qc_tx";
        Assert.Equal("1", await RowTextAsync(other, Read));
        Assert.Equal("1", await RowTextAsync(other, Read));

        // A REPEATABLE READ transaction takes its snapshot now.
        await ExecAsync(snapshot, "begin isolation level repeatable read");
        Assert.Equal("1", await RowTextAsync(snapshot, Read));

        // Uncommitted: the writer sees its change, the others the committed value.
        await ExecAsync(writer, "begin");
        await ExecAsync(writer, "update qc_tx set v = 2");
        Assert.Equal("2", await RowTextAsync(writer, Read));
        Assert.Equal("1", await RowTextAsync(other, Read));

        // Rolled back: the old value stays right.
        await ExecAsync(writer, "rollback");
        Assert.Equal("1", await RowTextAsync(other, Read));
        Assert.Equal("1", await RowTextAsync(writer, Read));

        // Committed: everybody outside a snapshot sees the new value at once, and it is cached again.
        await ExecAsync(writer, "begin");
        await ExecAsync(writer, "update qc_tx set v = 3");
        await ExecAsync(writer, "commit");
        Assert.Equal("3", await RowTextAsync(other, Read));
        long hits = host.Server.CacheStats.Hits;
        Assert.Equal("3", await RowTextAsync(writer, Read));
        Assert.Equal(hits + 1, host.Server.CacheStats.Hits);

        // The REPEATABLE READ transaction still sees its snapshot, never the cached newer value.
        Assert.Equal("1", await RowTextAsync(snapshot, Read));
        await ExecAsync(snapshot, "commit");
        Assert.Equal("3", await RowTextAsync(snapshot, Read));
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task Keys_cover_the_user_the_search_path_and_the_parameters_and_volatile_functions_are_not_cached()
    {
        await DirectAsync(_fixture,
            "drop table if exists qc_rls; create table qc_rls (owner text, v int); insert into qc_rls values ('qc_reader', 1), ('app', 2);"
            + " do $$ begin if not exists (select from pg_roles where rolname = 'qc_reader') then create role qc_reader login; end if; end $$;"
            + " "
            + " alter table qc_rls enable row level security; alter table qc_rls force row level security;"
            + " drop policy if exists own on qc_rls; create policy own on qc_rls using (owner = current_user); grant select on qc_rls to app, qc_reader;"
            + " drop schema if exists qc_a cascade; drop schema if exists qc_b cascade; create schema qc_a; create schema qc_b;"
            + " create table qc_a.t (v text); insert into qc_a.t values ('a'); create table qc_b.t (v text); insert into qc_b.t values ('b');"
            + " grant usage on schema qc_a, qc_b to public; grant select on qc_a.t, qc_b.t to public");
        await using var host = Start(_fixture.Primary);

        // Row-level security: the same statement, each user's own rows, each from its own cache entry.
        await using (var su = await OpenAsync(host, user: "qc_reader"))
        await using (var app = await OpenAsync(host, user: PostgresFixture.AppUser))
        {
            for (int i = 0; i < 2; i++)
            {
                Assert.Equal("1", await RowTextAsync(su, "select sum(v) from qc_rls"));
                Assert.Equal("2", await RowTextAsync(app, "select sum(v) from qc_rls"));
            }
        }

        // search_path: the same text reads another table after SET.
        await using var conn = await OpenAsync(host);
        await ExecAsync(conn, "set search_path = qc_a");
        Assert.Equal("a", await RowTextAsync(conn, "select v from t"));
        Assert.Equal("a", await RowTextAsync(conn, "select v from t"));
        await ExecAsync(conn, "set search_path = qc_b");
        Assert.Equal("b", await RowTextAsync(conn, "select v from t"));
        await ExecAsync(conn, "set search_path = qc_a");
        Assert.Equal("a", await RowTextAsync(conn, "select v from t"));

        // Extended protocol: the parameter values are part of the key.
        await ExecAsync(conn, "set search_path = public");
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal("1", await RowTextAsync(conn, "select v from qc_rls where v = $1", 1));
            Assert.Equal("2", await RowTextAsync(conn, "select v from qc_rls where v = $1", 2));
        }

        // Volatile and session functions are asked every time.
        long entries = host.Server.CacheStats.Entries;
        var first = await RowTextAsync(conn, "select random()::text || clock_timestamp()::text");
        Assert.NotEqual(first, await RowTextAsync(conn, "select random()::text || clock_timestamp()::text"));
        Assert.Equal("postgres", await RowTextAsync(conn, "select current_user"));
        await RowTextAsync(conn, "select now()");
        await RowTextAsync(conn, "select count(*) from pg_class");
        Assert.Equal(entries, host.Server.CacheStats.Entries);
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task Views_temporary_tables_and_volatile_user_functions_are_asked_every_time()
    {
        await DirectAsync(_fixture,
            "drop view if exists qc_view; drop table if exists qc_base; create table qc_base (v int); insert into qc_base values (1);"
            + " create view qc_view as select v from qc_base;"
            + " create or replace function qc_counter() returns bigint language sql volatile as 'select count(*) from qc_base';"
            + " create or replace function qc_double(int) returns int language sql immutable as 'select $1 * 2'");
        await using var host = Start(_fixture.Primary);
        await using var conn = await OpenAsync(host);

        // A view's base table is unknown to FastPool: a write to it must show through the view at once.
        Assert.Equal("1", await RowTextAsync(conn, "select v from qc_view"));
        Assert.Equal("1", await RowTextAsync(conn, "select v from qc_view"));
        await ExecAsync(conn, "update qc_base set v = 2");
        Assert.Equal("2", await RowTextAsync(conn, "select v from qc_view"));
        Assert.Equal("1", await RowTextAsync(conn, "select qc_counter()"));
        await DirectAsync(_fixture, "insert into qc_base values (3)");
        Assert.Equal("2", await RowTextAsync(conn, "select qc_counter()"));
        Assert.Equal(0, host.Server.CacheStats.Entries);

        // An immutable function over a table is cached (and invalidated by the table).
        Assert.Equal("4|6", string.Join('|', await RowTextAsync(conn, "select string_agg(qc_double(v)::text, '|' order by v) from qc_base")));
        Assert.Equal(1, host.Server.CacheStats.Entries);

        // A temporary table of the same name as a cached one: that session is never answered from the cache again.
        Assert.Equal("2", await RowTextAsync(conn, "select min(v) from qc_base"));
        await using var pinned = await OpenAsync(host);
        await ExecAsync(pinned, "create temp table qc_base (v int)");
        Assert.Equal("<null>", await RowTextAsync(pinned, "select min(v) from qc_base"));
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task Cache_safe_list_caches_a_view_and_the_unsafe_list_never_caches_a_table()
    {
        await DirectAsync(_fixture,
            "drop view if exists qc_sview; drop table if exists qc_sbase, qc_unsafe; create table qc_sbase (v int); insert into qc_sbase values (1);"
            + " create view qc_sview as select v from qc_sbase; create table qc_unsafe (v int); insert into qc_unsafe values (5)");
        await using var host = Start(_fixture.Primary, c => c with
        {
            SafeTables = new HashSet<string> { "qc_sview" },
            UnsafeTables = new HashSet<string> { "qc_unsafe" },
        });
        await using var conn = await OpenAsync(host);
        Assert.Equal("1", await RowTextAsync(conn, "select v from qc_sview"));
        Assert.Equal("5", await RowTextAsync(conn, "select v from qc_unsafe"));
        Assert.Equal(1, host.Server.CacheStats.Entries);
        long hits = host.Server.CacheStats.Hits;
        Assert.Equal("1", await RowTextAsync(conn, "select v from qc_sview"));
        Assert.Equal(hits + 1, host.Server.CacheStats.Hits);
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }
}
