using System.Text;
using FastPool.Routing.Classification;

namespace FastPool.Routing.Tests.Classification;

public sealed class SqlClassifierTests
{
    private static QueryTraits Classify(string sql, ClassifierOptions? options = null) =>
        SqlClassifier.Classify(Encoding.UTF8.GetBytes(sql), options);

    [Theory]
    [InlineData("SELECT abalance FROM pgbench_accounts WHERE aid = $1")]
    [InlineData("select 1")]
    [InlineData("  (SELECT 1) UNION (SELECT 2)")]
    [InlineData("VALUES (1), (2)")]
    [InlineData("TABLE pgbench_branches")]
    [InlineData("SHOW search_path")]
    [InlineData("EXPLAIN SELECT * FROM t")]
    [InlineData("EXPLAIN DELETE FROM t")]
    [InlineData("EXPLAIN (ANALYZE false) DELETE FROM t")]
    [InlineData("WITH x AS (SELECT 1) SELECT * FROM x")]
    [InlineData("select 'for update' from t")]
    [InlineData("select $$ insert into t values (1) $$")]
    [InlineData("select $tag$ it's delete $ stuff $tag$, \"update\" from t")]
    [InlineData("select E'\\' for update' from t")]
    [InlineData("select 'it''s for update' as x")]
    [InlineData("-- for update\nselect 1")]
    [InlineData("/* for /* nested */ update */ select 1")]
    [InlineData("select substring(x from 1 for 2) from t")]
    [InlineData("select count(*), max(id), lower(name) from t where id in (1, 2)")]
    [InlineData("select * from t for  /* odd */ -- comment\n  ordinality")]
    [InlineData("COPY t TO STDOUT")]
    [InlineData("copy (select 1) to stdout")]
    public void Reads_are_not_writes(string sql)
    {
        Assert.False(Classify(sql).HasFlag(QueryTraits.Write), sql);
    }

    [Theory]
    [InlineData("INSERT INTO t VALUES (1)")]
    [InlineData("update t set x = 1")]
    [InlineData("DELETE FROM t")]
    [InlineData("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE")]
    [InlineData("select * from t for update")]
    [InlineData("SELECT * FROM t FOR SHARE")]
    [InlineData("select * from t for no key update")]
    [InlineData("select * from t for key share")]
    [InlineData("select * from t FOR/*x*/UPDATE")]
    [InlineData("select *\nfrom t\n--c\nfor\n\tupdate skip locked")]
    [InlineData("select * into newtable from t")]
    [InlineData("with d as (delete from t returning *) select * from d")]
    [InlineData("WITH x AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM x")]
    [InlineData("select nextval('s')")]
    [InlineData("select pg_catalog.NEXTVAL('s')")]
    [InlineData("select \"nextval\"('s')")]
    [InlineData("select pg_advisory_lock(1)")]
    [InlineData("select lo_import('/tmp/x')")]
    [InlineData("select txid_current()")]
    [InlineData("EXPLAIN ANALYZE DELETE FROM t")]
    [InlineData("explain (analyze, buffers) update t set x = 1")]
    [InlineData("COPY t FROM STDIN")]
    [InlineData("CREATE TABLE t (id int)")]
    [InlineData("DROP TABLE t")]
    [InlineData("VACUUM t")]
    [InlineData("LOCK TABLE t")]
    [InlineData("EXECUTE stmt(1)")]
    [InlineData("CALL proc()")]
    [InlineData("DO $$ begin perform 1; end $$")]
    [InlineData("NOTIFY ch")]
    [InlineData("frobnicate the database")]
    [InlineData("select 1; insert into t values (1)")]
    [InlineData("/*NO LOAD BALANCE*/ select 1")]
    [InlineData("  /* no load balance */ select 1")]
    [InlineData("COMMIT PREPARED 'x'")]
    public void Writes_and_unknowns_go_to_the_primary(string sql)
    {
        Assert.True(Classify(sql).HasFlag(QueryTraits.Write), sql);
    }

    [Fact]
    public void Hint_is_reported()
    {
        Assert.True(Classify("/*NO LOAD BALANCE*/ select 1").HasFlag(QueryTraits.NoLoadBalanceHint));
        Assert.False(Classify("select 1 /*NO LOAD BALANCE*/").HasFlag(QueryTraits.NoLoadBalanceHint));
    }

    [Theory]
    [InlineData("BEGIN", QueryTraits.TransactionStart)]
    [InlineData("begin isolation level serializable, read only", QueryTraits.TransactionStart | QueryTraits.ReadOnlyTransaction | QueryTraits.SnapshotTransaction | QueryTraits.SerializableTransaction)]
    [InlineData("BEGIN ISOLATION LEVEL REPEATABLE READ", QueryTraits.TransactionStart | QueryTraits.SnapshotTransaction)]
    [InlineData("begin transaction isolation level read committed, not deferrable", QueryTraits.TransactionStart)]
    [InlineData("BEGIN /* read write */ ISOLATION LEVEL READ UNCOMMITTED", QueryTraits.TransactionStart)]
    [InlineData("START TRANSACTION READ ONLY", QueryTraits.TransactionStart | QueryTraits.ReadOnlyTransaction)]
    [InlineData("start transaction read write", QueryTraits.TransactionStart | QueryTraits.SnapshotTransaction)]
    [InlineData("COMMIT", QueryTraits.TransactionEnd)]
    [InlineData("end", QueryTraits.TransactionEnd)]
    [InlineData("ROLLBACK", QueryTraits.TransactionEnd)]
    [InlineData("abort", QueryTraits.TransactionEnd)]
    [InlineData("ROLLBACK TO SAVEPOINT a", QueryTraits.TransactionState)]
    [InlineData("savepoint a", QueryTraits.TransactionState)]
    [InlineData("release savepoint a", QueryTraits.TransactionState)]
    [InlineData("DECLARE c CURSOR FOR SELECT 1", QueryTraits.TransactionState)]
    [InlineData("fetch 10 from c", QueryTraits.TransactionState)]
    [InlineData("show search_path", QueryTraits.None)]
    [InlineData("PREPARE TRANSACTION 'x'", QueryTraits.Write | QueryTraits.TransactionEnd)]
    [InlineData("SET search_path = a, b", QueryTraits.SessionSetting)]
    [InlineData("set session statement_timeout to 5", QueryTraits.SessionSetting)]
    [InlineData("SET LOCAL statement_timeout = 5", QueryTraits.TransactionState)]
    [InlineData("set transaction isolation level serializable", QueryTraits.TransactionState)]
    [InlineData("SET SESSION AUTHORIZATION bob", QueryTraits.SessionSetting | QueryTraits.SessionAuthorization)]
    [InlineData("set role bob", QueryTraits.SessionSetting | QueryTraits.SessionAuthorization)]
    [InlineData("RESET ALL", QueryTraits.SessionSetting)]
    [InlineData("reset search_path", QueryTraits.SessionSetting)]
    [InlineData("DISCARD ALL", QueryTraits.SessionSetting)]
    [InlineData("select set_config('search_path', 'a', false)", QueryTraits.SessionSetting)]
    [InlineData("LISTEN ch", QueryTraits.Write | QueryTraits.Listen)]
    [InlineData("unlisten *", QueryTraits.Write | QueryTraits.Listen)]
    [InlineData("CREATE TEMP TABLE x (id int)", QueryTraits.Write | QueryTraits.TemporaryObject)]
    [InlineData("create global temporary table x (id int)", QueryTraits.Write | QueryTraits.TemporaryObject)]
    [InlineData("create or replace temp view v as select 1", QueryTraits.Write | QueryTraits.TemporaryObject)]
    [InlineData("create table temp (id int)", QueryTraits.Write)]
    [InlineData("create table pg_temp.t (id int)", QueryTraits.Write | QueryTraits.TemporaryObject)]
    [InlineData("CREATE UNLOGGED TABLE IF NOT EXISTS PG_TEMP.t (id int)", QueryTraits.Write | QueryTraits.TemporaryObject)]
    [InlineData("create view pg_temp_3.v as select 1", QueryTraits.Write | QueryTraits.TemporaryObject)]
    [InlineData("create table pg_temperature (id int)", QueryTraits.Write)]
    [InlineData("create table public.pg_temp (id int)", QueryTraits.Write)]
    [InlineData("select pg_advisory_lock(42)", QueryTraits.Write | QueryTraits.AdvisoryLock)]
    [InlineData("select pg_advisory_xact_lock(42)", QueryTraits.Write)]
    [InlineData("SELECT PG_TRY_ADVISORY_LOCK(42)", QueryTraits.Write | QueryTraits.AdvisoryLock)]
    [InlineData("SELECT SET_CONFIG('a.b', 'c', false)", QueryTraits.SessionSetting)]
    [InlineData("PREPARE q (int) AS SELECT * FROM t WHERE id = $1", QueryTraits.Prepare)]
    [InlineData("prepare q as insert into t values (1)", QueryTraits.Prepare | QueryTraits.Write)]
    [InlineData("DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t", QueryTraits.HoldCursor | QueryTraits.TransactionState)]
    [InlineData("declare c cursor for select * from t for update", QueryTraits.Write | QueryTraits.TransactionState)]
    [InlineData("", QueryTraits.None)]
    [InlineData(" ; ; ", QueryTraits.None)]
    [InlineData("select 1; select 2", QueryTraits.MultipleStatements)]
    [InlineData("BEGIN; SET LOCAL x = 1; COMMIT", QueryTraits.TransactionStart | QueryTraits.TransactionEnd | QueryTraits.MultipleStatements | QueryTraits.TransactionState)]
    public void Traits(string sql, QueryTraits expected)
    {
        Assert.Equal(expected, Classify(sql));
    }

    [Fact]
    public void Select_into_at_top_level_creates_a_table()
    {
        Assert.True(Classify("select * into strict x from t where false").HasFlag(QueryTraits.Write));
        Assert.False(Classify("select (select 1 where exists (select 1)) as x").HasFlag(QueryTraits.Write));
    }

    [Fact]
    public void Write_function_list_is_configurable()
    {
        var options = new ClassifierOptions { WriteFunctions = new FunctionList(["public.my_writer"]) };
        Assert.True(Classify("select my_writer(1)", options).HasFlag(QueryTraits.Write));
        Assert.True(Classify("select MY_WRITER(1)", options).HasFlag(QueryTraits.Write));
        Assert.False(Classify("select nextval('s')", options).HasFlag(QueryTraits.Write));
    }

    [Fact]
    public void Read_only_function_list_makes_every_other_function_a_write()
    {
        var options = new ClassifierOptions { ReadOnlyFunctions = new FunctionList(["count", "lower", "now"]) };
        Assert.False(Classify("select count(*), lower(name), now() from t where id in (1, 2) and exists (select 1)", options).HasFlag(QueryTraits.Write));
        Assert.True(Classify("select my_func(1)", options).HasFlag(QueryTraits.Write));
        Assert.False(Classify("select cast(1 as numeric(10, 2)), coalesce(a, b) from t", options).HasFlag(QueryTraits.Write));
    }

    [Fact]
    public void Function_lists_are_regular_expressions_matching_whole_names()
    {
        var writers = new ClassifierOptions { WriteFunctions = new FunctionList(["audit_.*", "log(ged|ging)", "billing\\.charge"]) };
        Assert.True(Classify("select audit_insert(1)", writers).HasFlag(QueryTraits.Write));
        Assert.True(Classify("select AUDIT_x()", writers).HasFlag(QueryTraits.Write));
        Assert.True(Classify("select logged(), 1", writers).HasFlag(QueryTraits.Write));

        // Anchored: a name that merely contains a match is not in the list.
        Assert.False(Classify("select my_audit_insert(1)", writers).HasFlag(QueryTraits.Write));
        Assert.False(Classify("select logged_in(1)", writers).HasFlag(QueryTraits.Write));

        // A pattern with a schema matches the call as written with that schema.
        Assert.True(Classify("select billing.charge(1)", writers).HasFlag(QueryTraits.Write));
        Assert.False(Classify("select charge(1)", writers).HasFlag(QueryTraits.Write));
        Assert.False(Classify("select other.charge(1)", writers).HasFlag(QueryTraits.Write));

        var readers = new ClassifierOptions { ReadOnlyFunctions = new FunctionList(["count", "pg_.*", "public\\.safe_.*"]) };
        Assert.False(Classify("select count(*), pg_is_in_recovery(), pg_backend_pid() from t", readers).HasFlag(QueryTraits.Write));
        Assert.False(Classify("select public.safe_read(1)", readers).HasFlag(QueryTraits.Write));
        Assert.True(Classify("select safe_read(1)", readers).HasFlag(QueryTraits.Write));
        Assert.True(Classify("select xpg_is_in_recovery()", readers).HasFlag(QueryTraits.Write));
        Assert.True(Classify("select counter(1)", readers).HasFlag(QueryTraits.Write));
    }

    [Fact]
    public void Set_session_characteristics_needs_the_primary() =>
        Assert.True(Classify("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE").HasFlag(QueryTraits.Write));

    [Fact]
    public void Classification_with_pattern_lists_allocates_nothing()
    {
        var options = new ClassifierOptions
        {
            WriteFunctions = new FunctionList([.. ClassifierOptions.DefaultWriteNames, "audit_.*"]),
            ReadOnlyFunctions = new FunctionList(["count", "pg_.*", "lower"]),
        };
        var sql = "select count(*), lower(name), public.pg_x(1) from t where id = $1"u8.ToArray();
        var traits = SqlClassifier.Classify(sql, options);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            traits |= SqlClassifier.Classify(sql, options);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(QueryTraits.None, traits);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void A_function_list_with_a_bad_pattern_is_refused() =>
        Assert.ThrowsAny<ArgumentException>(() => new FunctionList(["ok", "bad(("]));

    [Fact]
    public void Unterminated_constructs_do_not_throw_and_stay_conservative()
    {
        Assert.False(Classify("select 'unterminated").HasFlag(QueryTraits.Write));
        Assert.True(Classify("insert into t values ('unterminated").HasFlag(QueryTraits.Write));
        Assert.False(Classify("select 1 /* unterminated").HasFlag(QueryTraits.Write));
        Assert.False(Classify("select $x$ unterminated").HasFlag(QueryTraits.Write));
        Assert.Equal(QueryTraits.Write, Classify("$1"));
    }

    [Fact]
    public void Non_ascii_identifiers_are_words()
    {
        Assert.False(Classify("select \"größe\", größe from tabelle_ä").HasFlag(QueryTraits.Write));
        Assert.True(Classify("update tabelle_ä set größe = 1").HasFlag(QueryTraits.Write));
    }
}

/// <summary>The plain-SELECT pre-check must decide exactly as the lexer walk would, or leave the text to it.</summary>
public sealed class PlainSelectPrecheckTests
{
    [Theory]
    [InlineData("SELECT abalance FROM pgbench_accounts WHERE aid = 42;")]
    [InlineData("  select * from t for update")]
    [InlineData("select * from t FOR\nSHARE")]
    [InlineData("select a into b from t")]
    [InlineData("select 1; delete from t")]
    [InlineData("select 1;  ;\n")]
    [InlineData("select nextval('s')")]
    [InlineData("select information, formula, updated_at from t")]
    [InlineData("select x_for, \"for\", 'for update' from t")]
    [InlineData("select$1")]
    [InlineData("selectx from t")]
    [InlineData("/*NO LOAD BALANCE*/ select 1")]
    [InlineData("SELECT u.\"Id\", u.\"Name\" FROM \"Users\" AS u WHERE u.\"Email\" = $1 ORDER BY u.\"Id\" DESC LIMIT 10")]
    [InlineData("SELECT u.\"Id\", u.\"Name\" FROM \"Users\" AS u WHERE u.\"Email\" = $1 ORDER BY u.\"Id\" FOR UPDATE")]
    [InlineData("SELECT aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, b INTO t FROM x")]
    [InlineData("SELECT a, bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb_for FROM x")]
    public void Agrees_with_the_lexer_walk(string sql)
    {
        var bytes = Encoding.UTF8.GetBytes(sql);
        Assert.Equal(SqlClassifier.ClassifyByLexer(bytes), SqlClassifier.Classify(bytes));
    }

    [Fact]
    public void Agrees_with_the_lexer_walk_on_generated_texts()
    {
        string[] pieces =
        [
            "select", "for", "update", "share", "no", "key", "into", "insert", "delete", "merge", "with", "values",
            "nextval", "pg_advisory_lock", "format", "updated", "x", "e", "1", "1e", "E'", "$1", "_", "$", "\u00e9", "'", "\"", "--", "/*",
            "*/", "\n", " ", " ", " ", ";", "(", ")", "=", ".", "*", ",",
        ];
        var random = new Random(20261127);
        for (int n = 0; n < 20_000; n++)
        {
            var text = new StringBuilder(random.Next(2) == 0 ? "select " : string.Empty);
            // Half are long enough for the pre-check's 16-byte blocks, including a partial last block.
            int count = random.Next(1, random.Next(2) == 0 ? 9 : 40);
            for (int i = 0; i < count; i++)
            {
                var piece = pieces[random.Next(pieces.Length)];
                text.Append(random.Next(3) == 0 ? piece.ToUpperInvariant() : piece);
            }

            var bytes = Encoding.UTF8.GetBytes(text.ToString());
            var fast = SqlClassifier.Classify(bytes);
            var full = SqlClassifier.ClassifyByLexer(bytes);
            Assert.True(fast == full, $"\"{text}\": pre-check {fast}, lexer {full}");
        }
    }
}
