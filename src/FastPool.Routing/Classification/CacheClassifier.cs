using System.Text;

namespace FastPool.Routing.Classification;

/// <summary>What the result cache needs to know about a statement text beyond read/write.</summary>
public enum CacheReadVerdict : byte
{
    /// <summary>One read-only query whose result depends only on the relations listed and the session's settings.</summary>
    Cacheable,

    /// <summary>Anything else: a write, several statements, a volatile or session-dependent function, a system catalog.</summary>
    NotCacheable,
}

/// <summary>What a statement may write, for cache invalidation.</summary>
public enum CacheWriteScope : byte
{
    /// <summary>Nothing: a read, a transaction control or session statement.</summary>
    None,

    /// <summary>Only the relations listed.</summary>
    Tables,

    /// <summary>Something the text does not name (a function, DO, CALL, EXECUTE, GRANT, ...): every entry of the database.</summary>
    Everything,
}

/// <summary>
/// The result cache's view of a statement, on top of <see cref="SqlClassifier"/>: which relations a cacheable read
/// reads (the names after FROM, JOIN and TABLE; schema qualification dropped, unquoted names folded to lower case,
/// as PostgreSQL folds them: docs 4.1.1), and which relations a write writes (INSERT INTO, UPDATE, DELETE FROM,
/// MERGE INTO, TRUNCATE, COPY ... FROM, ALTER/DROP/CREATE TABLE and the like). Names are matched without their
/// schema, so a write to a.t also invalidates reads of b.t: more invalidation, never less.
/// </summary>
public static class CacheClassifier
{
    /// <summary>
    /// Functions and key words whose value is not a function of the query text, the tables and the settings the
    /// cache key covers (PostgreSQL docs 9.9.5 "Current Date/Time", 9.26 "System Information Functions", 9.17
    /// "Sequence Manipulation Functions", random 9.3): memqcache's default black list, extended.
    /// </summary>
    public static IReadOnlyList<string> DefaultVolatileNames { get; } = [
        "now", "random", "random_normal", "setseed", "clock_timestamp", "statement_timestamp", "transaction_timestamp",
        "timeofday", "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
        "current_user", "current_role", "session_user", "user", "system_user", "current_schema", "current_schemas",
        "current_catalog", "current_database", "current_query", "current_setting", "pg_backend_pid", "inet_client_addr",
        "inet_client_port", "inet_server_addr", "inet_server_port", "pg_my_temp_schema", "pg_is_other_temp_schema",
        "pg_postmaster_start_time", "pg_conf_load_time", "pg_current_xact_id_if_assigned", "txid_current_if_assigned",
        "txid_current_snapshot", "pg_current_snapshot", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
        "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v4", "has_table_privilege", "has_column_privilege",
        "has_schema_privilege", "has_database_privilege", "has_function_privilege", "pg_has_role", "row_security_active",
        "pg_stat_get_activity", "pg_is_in_recovery", "pg_last_wal_replay_lsn", "pg_current_wal_lsn", "pg_current_wal_insert_lsn",
        "pg_relation_size", "pg_total_relation_size", "pg_table_size", "pg_database_size", "pg_try_advisory_lock",
    ];

    public static FunctionList DefaultVolatileFunctions { get; } = new(DefaultVolatileNames);

    /// <summary>
    /// Whether <paramref name="sql"/> may be answered from the cache, and which relations its result depends on
    /// (added to <paramref name="tables"/>). <paramref name="functions"/> gets every function called, for callers
    /// that check them further (their volatility in the catalog).
    /// </summary>
    public static CacheReadVerdict AnalyzeRead(ReadOnlySpan<byte> sql, ClassifierOptions routing, FunctionList volatileFunctions, List<string> tables, List<string>? functions = null)
    {
        var traits = SqlClassifier.Classify(sql, routing);
        if (traits != QueryTraits.None)
        {
            // Writes, several statements, transaction control, session settings, hints: never cached.
            return CacheReadVerdict.NotCacheable;
        }

        var lexer = new SqlLexer(sql);
        var first = Skip(ref lexer, SqlTokenKind.OpenParen);
        if (first.Kind != SqlTokenKind.Word)
        {
            return CacheReadVerdict.NotCacheable;
        }

        var w = lexer.TextOf(first);
        if (!(Is(w, "select"u8) || Is(w, "with"u8) || Is(w, "values"u8) || Is(w, "table"u8)))
        {
            return CacheReadVerdict.NotCacheable;
        }

        bool expectRelation = Is(w, "table"u8);
        var previous = first;
        var token = lexer.Next();
        while (token.Kind is not (SqlTokenKind.End or SqlTokenKind.Semicolon))
        {
            var next = lexer.Next();
            switch (token.Kind)
            {
                case SqlTokenKind.Word:
                case SqlTokenKind.QuotedIdentifier:
                    {
                        // A qualified name: name { . name } (4.1.1); only its last part is kept.
                        var last = token;
                        bool qualified = false;
                        while (next.Kind == SqlTokenKind.Symbol && lexer.TextOf(next)[0] == '.')
                        {
                            var part = lexer.Next();
                            if (part.Kind is not (SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier))
                            {
                                // name.* and the like.
                                next = part;
                                break;
                            }

                            if (IsSystemSchema(lexer.TextOf(last), last.Kind))
                            {
                                return CacheReadVerdict.NotCacheable;
                            }

                            qualified = true;
                            last = part;
                            next = lexer.Next();
                        }

                        var name = lexer.TextOf(last);
                        if (next.Kind == SqlTokenKind.OpenParen)
                        {
                            if (last.Kind == SqlTokenKind.Word && !qualified && SqlClassifier.IsParenthesizedKeyword(name))
                            {
                                break;
                            }

                            var bare = last.Kind == SqlTokenKind.QuotedIdentifier ? name[1..^1] : name;
                            if (volatileFunctions.Contains(bare) || routing.WriteFunctions.Contains(bare))
                            {
                                return CacheReadVerdict.NotCacheable;
                            }

                            functions?.Add(NameOf(last, name));
                            expectRelation = false;
                            break;
                        }

                        if (last.Kind == SqlTokenKind.Word && !qualified)
                        {
                            // Key words that read the clock or the session (9.9.5, 9.26) need no parentheses.
                            if (volatileFunctions.Contains(name) && IsSqlValueFunction(name))
                            {
                                return CacheReadVerdict.NotCacheable;
                            }

                            if (Is(name, "from"u8) || Is(name, "join"u8) || Is(name, "only"u8) || Is(name, "lateral"u8))
                            {
                                expectRelation = true;
                                break;
                            }
                        }

                        if (expectRelation)
                        {
                            string relation = NameOf(last, name);
                            if (relation.StartsWith("pg_", StringComparison.Ordinal))
                            {
                                // System catalogs and views (pg_class, pg_stat_*, pg_locks...) change without any write.
                                return CacheReadVerdict.NotCacheable;
                            }

                            tables.Add(relation);
                            expectRelation = false;
                        }

                        break;
                    }

                case SqlTokenKind.Symbol when lexer.TextOf(token)[0] == ',' && previous.Kind != SqlTokenKind.OpenParen:
                    // FROM a, b: the next item of a FROM list is a relation too. A comma in a select list marks a
                    // column name, which only adds a name that invalidates a little more.
                    expectRelation = InFromList(tables.Count);
                    break;
                default:
                    expectRelation = false;
                    break;
            }

            previous = token;
            token = next;
        }

        return CacheReadVerdict.Cacheable;
    }

    /// <summary>
    /// The relations <paramref name="sql"/> writes (added to <paramref name="tables"/>); <see cref="CacheWriteScope.Everything"/>
    /// when it may write something it does not name.
    /// </summary>
    public static CacheWriteScope AnalyzeWrites(ReadOnlySpan<byte> sql, ClassifierOptions routing, List<string> tables)
    {
        var traits = SqlClassifier.Classify(sql, routing);
        if ((traits & (QueryTraits.Write | QueryTraits.SessionAuthorization)) == 0)
        {
            return CacheWriteScope.None;
        }

        var scope = CacheWriteScope.None;
        var lexer = new SqlLexer(sql);
        bool statementStart = true;
        bool sawLock = false;
        bool sawInto = false;
        while (true)
        {
            var token = lexer.Next();
            if (token.Kind == SqlTokenKind.End)
            {
                break;
            }

            if (token.Kind == SqlTokenKind.Semicolon)
            {
                statementStart = true;
                continue;
            }

            if (token.Kind != SqlTokenKind.Word)
            {
                if (token.Kind != SqlTokenKind.OpenParen)
                {
                    statementStart = false;
                }

                continue;
            }

            var w = lexer.TextOf(token);
            bool atStart = statementStart;
            statementStart = false;
            if (Is(w, "for"u8))
            {
                // A row-locking clause (SELECT docs, "The Locking Clause"): a lock, no write; its UPDATE names nothing.
                sawLock = true;
            }
            else if (Is(w, "into"u8))
            {
                // Not after INSERT or MERGE (they take their INTO): SELECT ... INTO creates a table.
                sawInto = true;
            }
            else if (Is(w, "insert"u8) || Is(w, "merge"u8))
            {
                scope = Widest(scope, RelationAfter(ref lexer, "into"u8, tables));
            }
            else if (Is(w, "delete"u8))
            {
                scope = Widest(scope, RelationAfter(ref lexer, "from"u8, tables));
            }
            else if (Is(w, "update"u8))
            {
                // Also "FOR UPDATE" (a lock, no write) and "ON UPDATE" in DDL: only a statement start or a WITH
                // body names a relation here; a false name only invalidates more.
                scope = Widest(scope, Relation(ref lexer, tables));
            }
            else if (Is(w, "truncate"u8))
            {
                scope = Widest(scope, RelationList(ref lexer, tables));
            }
            else if (atStart && (Is(w, "alter"u8) || Is(w, "drop"u8) || Is(w, "create"u8) || Is(w, "copy"u8)
                || Is(w, "vacuum"u8) || Is(w, "analyze"u8) || Is(w, "cluster"u8) || Is(w, "reindex"u8) || Is(w, "comment"u8)))
            {
                scope = Widest(scope, Ddl(ref lexer, w, tables));
            }
            else if (atStart && !(Is(w, "select"u8) || Is(w, "with"u8) || Is(w, "values"u8) || Is(w, "table"u8)
                || Is(w, "begin"u8) || Is(w, "start"u8) || Is(w, "commit"u8) || Is(w, "end"u8) || Is(w, "rollback"u8)
                || Is(w, "abort"u8) || Is(w, "savepoint"u8) || Is(w, "release"u8) || Is(w, "set"u8) || Is(w, "reset"u8)
                || Is(w, "show"u8) || Is(w, "explain"u8) || Is(w, "listen"u8) || Is(w, "unlisten"u8) || Is(w, "notify"u8)
                || Is(w, "discard"u8) || Is(w, "deallocate"u8) || Is(w, "prepare"u8) || Is(w, "declare"u8)
                || Is(w, "fetch"u8) || Is(w, "move"u8) || Is(w, "close"u8) || Is(w, "lock"u8) || Is(w, "checkpoint"u8)))
            {
                // DO, CALL, EXECUTE, GRANT, REVOKE, REFRESH, SECURITY LABEL, IMPORT FOREIGN SCHEMA, anything unknown.
                scope = CacheWriteScope.Everything;
            }
            else if (Is(w, "role"u8) || Is(w, "authorization"u8))
            {
                // SET ROLE / SESSION AUTHORIZATION are in the key; nothing to invalidate.
            }
        }

        // A write function (write_function_list) writes what it wants; a write the walk did not attribute to a
        // name (SELECT INTO, a data-modifying CTE it missed) is taken as everything.
        if ((traits & QueryTraits.Write) != 0 && scope == CacheWriteScope.None && (traits & QueryTraits.Listen) == 0
            && !(sawLock && !sawInto && !CallsWriteFunction(sql, routing)))
        {
            scope = CacheWriteScope.Everything;
        }

        return scope;
    }

    private static bool CallsWriteFunction(ReadOnlySpan<byte> sql, ClassifierOptions routing)
    {
        var lexer = new SqlLexer(sql);
        SqlToken previous = default;
        while (true)
        {
            var t = lexer.Next();
            if (t.Kind == SqlTokenKind.End)
            {
                return false;
            }

            if (t.Kind == SqlTokenKind.OpenParen && previous.Kind is SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier)
            {
                var name = lexer.TextOf(previous);
                if (routing.WriteFunctions.Contains(previous.Kind == SqlTokenKind.QuotedIdentifier ? name[1..^1] : name))
                {
                    return true;
                }
            }

            previous = t;
        }
    }

    /// <summary>The wider of two scopes (Everything over Tables over None).</summary>
    private static CacheWriteScope Widest(CacheWriteScope a, CacheWriteScope b) => a > b ? a : b;

    private static CacheWriteScope Ddl(ref SqlLexer lexer, ReadOnlySpan<byte> verb, List<string> tables)
    {
        if (Is(verb, "copy"u8))
        {
            // COPY name [(columns)] FROM ...: COPY (query) TO writes nothing.
            var t = lexer.Next();
            if (t.Kind == SqlTokenKind.OpenParen)
            {
                return CacheWriteScope.None;
            }

            int before = tables.Count;
            AddQualified(ref lexer, t, tables, out _);
            return tables.Count > before ? CacheWriteScope.Tables : CacheWriteScope.Everything;
        }

        // ALTER/DROP/CREATE [OR REPLACE] [TEMP|UNLOGGED|MATERIALIZED|...] TABLE|VIEW|INDEX|... [IF [NOT] EXISTS] [ONLY] name[, name]
        // An index, trigger, policy or rule changes what a table's reads return only through that table: its name
        // follows ON, which the walk below also takes.
        int start = tables.Count;
        bool sawKind = false;
        while (true)
        {
            var t = lexer.Next();
            if (t.Kind is SqlTokenKind.End or SqlTokenKind.Semicolon)
            {
                break;
            }

            if (t.Kind is not (SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier))
            {
                continue;
            }

            var w = lexer.TextOf(t);
            if (t.Kind == SqlTokenKind.Word && (Is(w, "table"u8) || Is(w, "view"u8) || Is(w, "on"u8) || Is(w, "sequence"u8)))
            {
                sawKind = true;
                var item = lexer.Next();
                while (item.Kind == SqlTokenKind.Word && (Is(lexer.TextOf(item), "if"u8) || Is(lexer.TextOf(item), "not"u8)
                    || Is(lexer.TextOf(item), "exists"u8) || Is(lexer.TextOf(item), "only"u8)))
                {
                    item = lexer.Next();
                }

                var after = AddQualified(ref lexer, item, tables, out _);
                while (after.Kind == SqlTokenKind.Symbol && lexer.TextOf(after)[0] == ',')
                {
                    after = AddQualified(ref lexer, lexer.Next(), tables, out _);
                }

                if (after.Kind is SqlTokenKind.End or SqlTokenKind.Semicolon)
                {
                    break;
                }
            }
        }

        if (Is(verb, "create"u8) && tables.Count > start)
        {
            return CacheWriteScope.Tables;
        }

        // DROP SCHEMA, ALTER FUNCTION, CREATE FUNCTION, DROP OWNED, anything that does not name its relations.
        return sawKind && tables.Count > start ? CacheWriteScope.Tables : CacheWriteScope.Everything;
    }

    private static CacheWriteScope RelationAfter(ref SqlLexer lexer, ReadOnlySpan<byte> keyword, List<string> tables)
    {
        var t = lexer.Next();
        if (t.Kind == SqlTokenKind.Word && Is(lexer.TextOf(t), keyword))
        {
            return Relation(ref lexer, tables);
        }

        // MERGE's WHEN ... THEN INSERT / DELETE actions name no relation: they write the MERGE's target, already taken.
        return CacheWriteScope.None;
    }

    private static CacheWriteScope Relation(ref SqlLexer lexer, List<string> tables)
    {
        var t = lexer.Next();
        if (t.Kind == SqlTokenKind.Word && Is(lexer.TextOf(t), "only"u8))
        {
            t = lexer.Next();
        }

        if (t.Kind is not (SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier))
        {
            // FOR UPDATE; (a row lock) and ON UPDATE CASCADE end here: no relation.
            return CacheWriteScope.None;
        }

        var w = lexer.TextOf(t);
        if (t.Kind == SqlTokenKind.Word && (Is(w, "of"u8) || Is(w, "nowait"u8) || Is(w, "skip"u8) || Is(w, "cascade"u8)
            || Is(w, "restrict"u8) || Is(w, "set"u8) || Is(w, "no"u8)))
        {
            return CacheWriteScope.None;
        }

        AddQualified(ref lexer, t, tables, out _);
        return CacheWriteScope.Tables;
    }

    private static CacheWriteScope RelationList(ref SqlLexer lexer, List<string> tables)
    {
        var t = lexer.Next();
        if (t.Kind == SqlTokenKind.Word && Is(lexer.TextOf(t), "table"u8))
        {
            t = lexer.Next();
        }

        int before = tables.Count;
        while (true)
        {
            if (t.Kind == SqlTokenKind.Word && Is(lexer.TextOf(t), "only"u8))
            {
                t = lexer.Next();
            }

            var after = AddQualified(ref lexer, t, tables, out _);
            if (!(after.Kind == SqlTokenKind.Symbol && lexer.TextOf(after)[0] == ','))
            {
                break;
            }

            t = lexer.Next();
        }

        return tables.Count > before ? CacheWriteScope.Tables : CacheWriteScope.Everything;
    }

    /// <summary>Adds the relation named at <paramref name="first"/> (schema dropped); returns the token after the name.</summary>
    private static SqlToken AddQualified(ref SqlLexer lexer, SqlToken first, List<string> tables, out bool added)
    {
        added = false;
        if (first.Kind is not (SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier))
        {
            return first;
        }

        var last = first;
        var next = lexer.Next();
        while (next.Kind == SqlTokenKind.Symbol && lexer.TextOf(next)[0] == '.')
        {
            var part = lexer.Next();
            if (part.Kind is not (SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier))
            {
                return part;
            }

            last = part;
            next = lexer.Next();
        }

        tables.Add(NameOf(last, lexer.TextOf(last)));
        added = true;
        return next;
    }

    /// <summary>The name as PostgreSQL resolves it: unquoted folded to lower case, quoted as written (4.1.1).</summary>
    public static string NameOf(SqlToken token, ReadOnlySpan<byte> text)
    {
        if (token.Kind == SqlTokenKind.QuotedIdentifier)
        {
            return Encoding.UTF8.GetString(text[1..^1]).Replace("\"\"", "\"", StringComparison.Ordinal);
        }

        return Encoding.UTF8.GetString(text).ToLowerInvariant();
    }

    /// <summary>Normalises a configured or admin-given relation name the way <see cref="NameOf"/> does (schema dropped).</summary>
    public static string NormalizeName(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name.Trim());
        var lexer = new SqlLexer(bytes);
        var list = new List<string>(1);
        AddQualified(ref lexer, lexer.Next(), list, out _);
        return list.Count == 1 ? list[0] : name.Trim().ToLowerInvariant();
    }

    /// <summary>
    /// A cheap pre-check before any lookup: the first key word is SELECT, WITH, VALUES or TABLE. With
    /// <paramref name="complete"/> false the text was cut, and a word touching the cut does not count.
    /// </summary>
    public static bool StartsLikeRead(ReadOnlySpan<byte> text, bool complete)
    {
        var lexer = new SqlLexer(text);
        var t = Skip(ref lexer, SqlTokenKind.OpenParen);
        if (t.Kind != SqlTokenKind.Word || (!complete && t.Start + t.Length >= text.Length))
        {
            return false;
        }

        var w = lexer.TextOf(t);
        return Is(w, "select"u8) || Is(w, "with"u8) || Is(w, "values"u8) || Is(w, "table"u8);
    }

    /// <summary>The text starts with CREATE, ALTER, DROP or COMMENT: what a name is may change.</summary>
    public static bool IsDdl(ReadOnlySpan<byte> text)
    {
        var lexer = new SqlLexer(text);
        var t = lexer.Next();
        if (t.Kind != SqlTokenKind.Word)
        {
            return false;
        }

        var w = lexer.TextOf(t);
        return Is(w, "create"u8) || Is(w, "alter"u8) || Is(w, "drop"u8) || Is(w, "comment"u8);
    }

    private static bool InFromList(int tablesSeen) => tablesSeen > 0;

    private static bool IsSystemSchema(ReadOnlySpan<byte> schema, SqlTokenKind kind) =>
        kind == SqlTokenKind.Word && (Is(schema, "pg_catalog"u8) || Is(schema, "information_schema"u8) || Is(schema, "pg_temp"u8));

    /// <summary>The SQL-standard value functions written without parentheses (9.9.5, 9.26).</summary>
    private static bool IsSqlValueFunction(ReadOnlySpan<byte> w) =>
        Is(w, "current_date"u8) || Is(w, "current_time"u8) || Is(w, "current_timestamp"u8) || Is(w, "localtime"u8)
        || Is(w, "localtimestamp"u8) || Is(w, "current_user"u8) || Is(w, "current_role"u8) || Is(w, "session_user"u8)
        || Is(w, "user"u8) || Is(w, "system_user"u8) || Is(w, "current_schema"u8) || Is(w, "current_catalog"u8);

    private static SqlToken Skip(ref SqlLexer lexer, SqlTokenKind kind)
    {
        var t = lexer.Next();
        while (t.Kind == kind)
        {
            t = lexer.Next();
        }

        return t;
    }

    private static bool Is(ReadOnlySpan<byte> word, ReadOnlySpan<byte> keyword) =>
        word.Length == keyword.Length && Ascii.EqualsIgnoreCase(word, keyword);
}
