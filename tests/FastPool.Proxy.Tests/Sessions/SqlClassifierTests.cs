using System.Text;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Sessions;

namespace FastPool.Proxy.Tests.Sessions;

public class SqlClassifierTests
{
    private static (QueryTraits Traits, PinReasons Pins) Classify(string sql)
    {
        var traits = SqlClassifier.Classify(Encoding.UTF8.GetBytes(sql), out var pins);
        return (traits, pins);
    }

    [Theory]
    [InlineData("LISTEN ch", PinReasons.Listen)]
    [InlineData("select set_config('work_mem', '9999kB', false)", PinReasons.Untracked)]
    [InlineData("SELECT SET_CONFIG('role', 'r1', $1)", PinReasons.Untracked)]
    [InlineData("select set_config('request.jwt.claims', '{}', true)", PinReasons.None)]
    [InlineData("select set_config('a.b', lower('X'), 'on'), 1", PinReasons.None)]
    [InlineData("select 'set_config(''x'', ''y'', false)'", PinReasons.None)]
    [InlineData("select 1; listen \"Ch\"", PinReasons.Listen)]
    [InlineData("select pg_advisory_lock(1)", PinReasons.AdvisoryLocks)]
    [InlineData("SELECT pg_try_advisory_lock_shared(1, 2)", PinReasons.AdvisoryLocks)]
    [InlineData("create temp table t (id int)", PinReasons.TempTables)]
    [InlineData("create table pg_temp.t (id int)", PinReasons.TempTables)]
    [InlineData("create table if not exists pg_temp.t (id int)", PinReasons.TempTables)]
    [InlineData("create table pg_temperature (id int)", PinReasons.None)]
    [InlineData("CREATE GLOBAL TEMPORARY TABLE t (id int)", PinReasons.TempTables)]
    [InlineData("create or replace temp view v as select 1", PinReasons.TempTables)]
    [InlineData("select * into temp t from x", PinReasons.TempTables)]
    [InlineData("PREPARE p AS select 1", PinReasons.Prepare)]
    [InlineData("declare c cursor with hold for select 1", PinReasons.HoldCursors)]
    [InlineData("SET SESSION AUTHORIZATION app", PinReasons.SessionAuthorization)]
    [InlineData("set session characteristics as transaction read only", PinReasons.Untracked)]
    public void Session_state_pins(string sql, PinReasons expected) => Assert.Equal(expected, Classify(sql).Pins);

    [Theory]
    [InlineData("select pg_advisory_xact_lock(1)")]
    [InlineData("select 'create temp table t; listen x; pg_advisory_lock'")]
    [InlineData("select $$ LISTEN x $$, $tag$ prepare p as select 1 $tag$")]
    [InlineData("-- listen x\nselect 1 /* create temp table /* nested */ t */")]
    [InlineData("select temp from weather")]
    [InlineData("PREPARE TRANSACTION 'gid'")]
    [InlineData("declare c cursor without hold for select 1")]
    [InlineData("set local search_path = x")]
    [InlineData("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")]
    [InlineData("select E'it\\'s; listen x'")]
    public void Ordinary_statements_do_not_pin(string sql)
    {
        var (traits, pins) = Classify(sql);
        Assert.Equal(PinReasons.None, pins);
        Assert.Equal(QueryTraits.None, traits);
    }

    [Theory]
    [InlineData("SET search_path = a, b", (int)QueryTraits.Setting)]
    [InlineData("reset statement_timeout", (int)QueryTraits.Setting)]
    [InlineData("RESET ALL", (int)QueryTraits.ResetAll)]
    [InlineData("discard all", (int)(QueryTraits.ResetAll | QueryTraits.DiscardAll))]
    [InlineData("rollback", (int)QueryTraits.Rollback)]
    [InlineData("UNLISTEN *", (int)QueryTraits.UnlistenAll)]
    [InlineData("DEALLOCATE ALL", (int)QueryTraits.DeallocateAll)]
    [InlineData("deallocate prepare all; set x = 1", (int)(QueryTraits.DeallocateAll | QueryTraits.Setting))]
    [InlineData("DEALLOCATE stmt1", (int)QueryTraits.None)]
    [InlineData("deallocate prepare \"all\"", (int)QueryTraits.None)]
    [InlineData("SET SESSION AUTHORIZATION DEFAULT", (int)QueryTraits.SessionAuthorizationDefault)]
    [InlineData("reset session authorization", (int)QueryTraits.SessionAuthorizationDefault)]
    [InlineData("DISCARD TEMP", (int)QueryTraits.DiscardTemp)]
    [InlineData("discard temporary", (int)QueryTraits.DiscardTemp)]
    [InlineData("DISCARD SEQUENCES", (int)QueryTraits.None)]
    [InlineData("CLOSE ALL", (int)QueryTraits.CloseAll)]
    [InlineData("close my_cursor", (int)QueryTraits.None)]
    [InlineData("SELECT pg_advisory_unlock_all()", (int)QueryTraits.AdvisoryUnlockAll)]
    [InlineData("SET SESSION AUTHORIZATION DEFAULT;RESET ALL;CLOSE ALL;UNLISTEN *;SELECT pg_advisory_unlock_all();DISCARD SEQUENCES;DISCARD TEMP",
        (int)(QueryTraits.SessionAuthorizationDefault | QueryTraits.ResetAll | QueryTraits.CloseAll | QueryTraits.UnlistenAll | QueryTraits.AdvisoryUnlockAll | QueryTraits.DiscardTemp))]
    public void Traits(string sql, int expected) => Assert.Equal((QueryTraits)expected, Classify(sql).Traits);

    /// <summary>
    /// The keyword pre-check may only skip texts the lexer would find nothing in: over every statement above, a
    /// few ORM/pgbench shapes and spellings in odd case, the shortcut and the full walk agree.
    /// </summary>
    [Theory]
    [InlineData("SELECT abalance FROM pgbench_accounts WHERE aid = $1")]
    [InlineData("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2")]
    [InlineData("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP)")]
    [InlineData("select * from t order by x limit 10 offset 20")]
    [InlineData("sElEcT PG_Advisory_Lock(1)")]
    [InlineData("CrEaTe TeMp TaBlE t (id int)")]
    [InlineData("LiStEn x")]
    [InlineData("uNlIsTeN *")]
    [InlineData("ReSeT aLl")]
    [InlineData("DiScArD aLl")]
    [InlineData("AbOrT")]
    [InlineData("DeClArE c CuRsOr WiTh HoLd FoR select 1")]
    [InlineData("PrEpArE p AS select 1")]
    [InlineData("select 1;set x=1")]
    [InlineData("select holder, tempo from shareholders")]
    [InlineData("sElEcT pg_try_AdViSoRy_LoCk(1), x.pg_advisory_lock_shared(2)")]
    [InlineData("select 1;ReSeT x")]
    [InlineData("select résumé;set x=1")]
    [InlineData("select 1/*c*/set x=1")]
    [InlineData("select 1;\nset x=1")]
    [InlineData("select 1;_x;set x to 1")]
    [InlineData("")]
    [InlineData(";;")]
    [InlineData("select abalance from pgbench_accounts where aid = 1; set x = 1")]
    [InlineData("select abalance from pgbench_accounts where aid = 1 and pg_try_advisory_lock(1)")]
    [InlineData("select aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;sET x=1")]
    [InlineData("select abalance from pgbench_accounts where aid = 1; éset x = 1")]
    [InlineData("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 2;")]
    [InlineData("update t set x = 1; set y = 2")]
    [InlineData("select 1 -- c\n  set x = 1")]
    [InlineData("select 1 /* c */ \t set x = 1")]
    [InlineData("select ';' set x = 1")]
    public void Keyword_precheck_agrees_with_the_full_walk(string sql)
    {
        var bytes = Encoding.UTF8.GetBytes(sql);
        var fast = SqlClassifier.Classify(bytes, out var fastPins);
        var full = SqlClassifier.ClassifyByLexer(bytes, out var fullPins);
        Assert.Equal(full, fast);
        Assert.Equal(fullPins, fastPins);
    }

    /// <summary>
    /// The same agreement over many texts glued from keywords, their neighbours and separators in every case, so
    /// that a keyword right after a digit, '_', '$', a quote, a comment or a multi-byte letter is covered too.
    /// </summary>
    [Fact]
    public void Keyword_precheck_agrees_with_the_full_walk_on_generated_texts()
    {
        string[] pieces =
        [
            "set", "reset", "discard", "all", "deallocate", "listen", "unlisten", "prepare", "transaction", "rollback",
            "abort", "create", "temp", "temporary", "with", "hold", "declare", "pg_advisory_lock", "advisory_lock",
            "session", "authorization", "default", "close", "pg_advisory_unlock_all", "set_config", "true", "false", ",", "select", "x", "1", "$1", "_", "$", "\u00e9", "'", "\"", "--", "/*", "*/", "\n",
            " ", " ", " ", ";", "(", ")", "=", ".", "*",
        ];
        var random = new Random(20261127);
        for (int n = 0; n < 20_000; n++)
        {
            var text = new StringBuilder();

            // Half are long enough for the pre-check's 16-byte blocks, a keyword across two of them included.
            int count = random.Next(1, random.Next(2) == 0 ? 9 : 40);
            for (int i = 0; i < count; i++)
            {
                var piece = pieces[random.Next(pieces.Length)];
                text.Append(random.Next(3) == 0 ? piece.ToUpperInvariant() : piece);
            }

            var bytes = Encoding.UTF8.GetBytes(text.ToString());
            var fast = SqlClassifier.Classify(bytes, out var fastPins);
            var full = SqlClassifier.ClassifyByLexer(bytes, out var fullPins);
            Assert.True(full == fast && fullPins == fastPins, $"\"{text}\": pre-check {fast}/{fastPins}, lexer {full}/{fullPins}");
        }
    }

    [Fact]
    public void Setting_changes_are_read_with_their_statement_text()
    {
        var changes = new List<SettingChange>();
        SqlClassifier.ReadSettingChanges(
            Encoding.UTF8.GetBytes("SET search_path = 'a;b', public; select 1; set session Statement_Timeout TO 5000 -- why\n; RESET my.option; SET TIME ZONE 'UTC'; set schema 'x'; reset all"),
            changes);

        Assert.Equal(
            [
                new SettingChange("search_path", "SET search_path = 'a;b', public"),
                new SettingChange("statement_timeout", "set session Statement_Timeout TO 5000"),
                new SettingChange("my.option", null),
                new SettingChange("timezone", "SET TIME ZONE 'UTC'"),
                new SettingChange("search_path", "set schema 'x'"),
                new SettingChange(null, null),
            ],
            changes);
    }

    [Fact]
    public void The_role_survives_reset_all_but_not_discard_all_or_a_default_session_authorization()
    {
        var changes = new List<SettingChange>();
        SqlClassifier.ReadSettingChanges(
            Encoding.UTF8.GetBytes("SET ROLE r1; RESET ALL; SET SESSION AUTHORIZATION DEFAULT; RESET SESSION AUTHORIZATION; SET SESSION AUTHORIZATION someone; DISCARD ALL"),
            changes);
        Assert.Equal(
            [
                new SettingChange("role", "SET ROLE r1"),
                new SettingChange(null, null),
                new SettingChange("role", null),
                new SettingChange("role", null),
                new SettingChange(null, null),
                new SettingChange("role", null),
            ],
            changes);
    }

    [Fact]
    public void Set_to_default_is_read_as_a_reset()
    {
        var changes = new List<SettingChange>();
        SqlClassifier.ReadSettingChanges(
            Encoding.UTF8.GetBytes("set search_path to default; SET SESSION application_name = DEFAULT; SET TIME ZONE default; set x.y = 'default'"),
            changes);

        Assert.Equal(
            [
                new SettingChange("search_path", null),
                new SettingChange("application_name", null),
                new SettingChange("timezone", null),
                new SettingChange("x.y", "set x.y = 'default'"),
            ],
            changes);
    }

    [Theory]
    // 64: TransactionControl, 8: Rollback (the enum is internal, xunit data must be public).
    [InlineData("savepoint s1", 64)]
    [InlineData("RELEASE SAVEPOINT s1", 64)]
    [InlineData("rollback to s1", 64)]
    [InlineData("ROLLBACK WORK TO SAVEPOINT s1", 64)]
    [InlineData("rollback", 8)]
    [InlineData("abort transaction and chain", 8)]
    [InlineData("commit and chain", 64)]
    [InlineData("END TRANSACTION AND CHAIN", 64)]
    [InlineData("commit and no chain", 0)]
    [InlineData("end", 0)]
    [InlineData("select case when true then 1 end", 0)]
    public void Transaction_control_is_recognised(string sql, int expectedTraits)
    {
        var expected = (QueryTraits)expectedTraits;
        var bytes = Encoding.UTF8.GetBytes(sql);
        Assert.Equal(expected, SqlClassifier.Classify(bytes, out _));
        Assert.Equal(expected, SqlClassifier.ClassifyByLexer(bytes, out _));
    }

    [Fact]
    public void Savepoints_and_rollbacks_are_read_in_order_with_the_settings()
    {
        var changes = new List<SettingChange>();
        SqlClassifier.ReadSettingChanges(
            Encoding.UTF8.GetBytes("savepoint S1; set work_mem = '8MB'; rollback to savepoint s1; release \"Mixed\"; commit and chain; rollback; end; abort"),
            changes);

        Assert.Equal(
            [
                new SettingChange("s1", null, SessionEvent.Savepoint),
                new SettingChange("work_mem", "set work_mem = '8MB'"),
                new SettingChange("s1", null, SessionEvent.RollbackTo),
                new SettingChange("Mixed", null, SessionEvent.Release),
                new SettingChange(null, null, SessionEvent.CommitChain),
                new SettingChange(null, null, SessionEvent.Rollback),
                new SettingChange(null, null, SessionEvent.Rollback),
            ],
            changes);
    }
}
