using System.Text;
using FastPool.Routing.Classification;

namespace FastPool.Routing.Tests.Classification;

public sealed class CacheClassifierTests
{
    private static (CacheReadVerdict Verdict, string Tables) Read(string sql)
    {
        var tables = new List<string>();
        var verdict = CacheClassifier.AnalyzeRead(Encoding.UTF8.GetBytes(sql), ClassifierOptions.Default, CacheClassifier.DefaultVolatileFunctions, tables);
        return (verdict, string.Join(",", tables.Distinct()));
    }

    private static (CacheWriteScope Scope, string Tables) Write(string sql)
    {
        var tables = new List<string>();
        var scope = CacheClassifier.AnalyzeWrites(Encoding.UTF8.GetBytes(sql), ClassifierOptions.Default, tables);
        return (scope, string.Join(",", tables.Distinct()));
    }

    [Theory]
    [InlineData("SELECT abalance FROM pgbench_accounts WHERE aid = $1", "pgbench_accounts")]
    [InlineData("select * from a, b x, public.\"C\" join d on d.id = a.id", "a,b,C,d")]
    [InlineData("select 1 from (select * from inner_t) s left join other using (id)", "inner_t,other")]
    [InlineData("TABLE accounts", "accounts")]
    [InlineData("with x as (select * from base) select * from x", "base,x")]
    [InlineData("select sum(v) from only parent", "parent")]
    [InlineData("select * from generate_series(1, 3)", "")]
    public void Reads_list_their_relations(string sql, string tables)
    {
        var (verdict, found) = Read(sql);
        Assert.Equal(CacheReadVerdict.Cacheable, verdict);
        foreach (var t in tables.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.Contains(t, found.Split(','));
        }
    }

    [Theory]
    [InlineData("select now()")]
    [InlineData("select current_timestamp")]
    [InlineData("select current_user")]
    [InlineData("select random() from t")]
    [InlineData("select nextval('s')")]
    [InlineData("select * from t for update")]
    [InlineData("select * from pg_class")]
    [InlineData("select * from pg_catalog.pg_namespace")]
    [InlineData("select * from information_schema.tables")]
    [InlineData("select 1; select 2")]
    [InlineData("begin")]
    [InlineData("update t set v = 1")]
    [InlineData("select * into newt from t")]
    [InlineData("with d as (delete from t returning *) select * from d")]
    [InlineData("select set_config('a.b', 'c', false)")]
    [InlineData("show search_path")]
    public void Not_cacheable(string sql) => Assert.Equal(CacheReadVerdict.NotCacheable, Read(sql).Verdict);

    [Theory]
    [InlineData("insert into s.t values (1)", CacheWriteScope.Tables, "t")]
    [InlineData("update only t set v = 1", CacheWriteScope.Tables, "t")]
    [InlineData("delete from \"T\" where id = 1", CacheWriteScope.Tables, "T")]
    [InlineData("merge into t using s on t.id = s.id when matched then update set v = 1 when not matched then insert values (1)", CacheWriteScope.Tables, "t")]
    [InlineData("truncate table a, only b", CacheWriteScope.Tables, "a,b")]
    [InlineData("copy t (a, b) from stdin", CacheWriteScope.Tables, "t")]
    [InlineData("alter table if exists t add column c int", CacheWriteScope.Tables, "t")]
    [InlineData("drop table a, b cascade", CacheWriteScope.Tables, "a,b")]
    [InlineData("create index on t (v)", CacheWriteScope.Tables, "t")]
    [InlineData("with w as (update t set v = 1 returning *) select * from w", CacheWriteScope.Tables, "t")]
    [InlineData("do $$ begin end $$", CacheWriteScope.Everything, "")]
    [InlineData("call proc()", CacheWriteScope.Everything, "")]
    [InlineData("grant select on t to u", CacheWriteScope.Everything, "")]
    [InlineData("select nextval('s')", CacheWriteScope.Everything, "")]
    [InlineData("select * from t for update", CacheWriteScope.None, "")]
    [InlineData("select nextval('s') from t for update", CacheWriteScope.Everything, "")]
    [InlineData("select * into newt from t for update", CacheWriteScope.Everything, "")]
    [InlineData("select 1", CacheWriteScope.None, "")]
    [InlineData("copy (select 1) to stdout", CacheWriteScope.None, "")]
    public void Writes_name_their_relations(string sql, CacheWriteScope scope, string tables)
    {
        var (found, names) = Write(sql);
        Assert.Equal(scope, found);
        foreach (var t in tables.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.Contains(t, names.Split(','));
        }
    }
}
