using System.Text;

namespace FastPool.Routing.Classification;

/// <summary>The function lists that refine read/write classification (Pgpool-II's names and meaning).</summary>
public sealed class ClassifierOptions
{
    /// <summary>
    /// Functions that write or hold session state, so a SELECT calling them must run on the primary: sequence
    /// functions (currval/lastval read state that nextval left on one server), advisory locks, large-object
    /// writers, transaction-id assignment, NOTIFY. Pgpool-II leaves its list empty by default; FastPool's
    /// default is the built-ins that would be misrouted otherwise (configurations add their own to these).
    /// </summary>
    public static IReadOnlyList<string> DefaultWriteNames { get; } = [
        "nextval", "setval", "currval", "lastval",
        "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
        "pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all",
        "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared", "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared",
        "lo_creat", "lo_create", "lo_import", "lo_unlink", "lo_open", "lo_write", "lowrite", "lo_put", "lo_truncate",
        "lo_truncate64", "lo_from_bytea",
        "txid_current", "pg_current_xact_id", "pg_notify", "pg_switch_wal", "pg_create_restore_point",
        "pg_create_physical_replication_slot", "pg_create_logical_replication_slot", "pg_drop_replication_slot",
        "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
    ];

    /// <summary>The default write functions; declared after the names, as static initializers run in text order.</summary>
    public static FunctionList DefaultWriteFunctions { get; } = new(DefaultWriteNames);

    public static ClassifierOptions Default { get; } = new();

    /// <summary>write_function_list: a SELECT calling one of these goes to the primary.</summary>
    public FunctionList WriteFunctions { get; init; } = DefaultWriteFunctions;

    /// <summary>read_only_function_list: when not empty, a SELECT calling any other function goes to the primary.</summary>
    public FunctionList ReadOnlyFunctions { get; init; } = FunctionList.Empty;
}

/// <summary>
/// Decides per statement whether a query string may run on a standby (PostgreSQL docs 26.4.2 "Hot Standby:
/// User's Overview" lists what a standby accepts): SELECT / VALUES / TABLE / SHOW / EXPLAIN are reads unless
/// they lock rows (FOR UPDATE/SHARE/NO KEY UPDATE/KEY SHARE), create a table (SELECT INTO), modify data in
/// a CTE, or call a write function; EXPLAIN ANALYZE runs its statement. Everything not understood is a
/// write, the safe default. Works on the UTF-8 bytes of the query and allocates nothing.
/// </summary>
public static class SqlClassifier
{
    public static QueryTraits Classify(ReadOnlySpan<byte> sql, ClassifierOptions? options = null)
    {
        var traits = SqlLexer.StartsWithHint(sql, "NO LOAD BALANCE"u8) ? QueryTraits.NoLoadBalanceHint | QueryTraits.Write : QueryTraits.None;
        return IsPlainSelect(sql) ? traits : traits | Walk(sql, options ?? ClassifierOptions.Default);
    }

    /// <summary><see cref="Classify"/> without the plain-SELECT pre-check: every text is walked (tests compare the two).</summary>
    internal static QueryTraits ClassifyByLexer(ReadOnlySpan<byte> sql, ClassifierOptions? options = null)
    {
        var traits = SqlLexer.StartsWithHint(sql, "NO LOAD BALANCE"u8) ? QueryTraits.NoLoadBalanceHint | QueryTraits.Write : QueryTraits.None;
        return traits | Walk(sql, options ?? ClassifierOptions.Default);
    }

    /// <summary>
    /// A single SELECT that calls nothing and holds none of the words that make a SELECT a write: no '(' at all (so no
    /// function call, whatever the lists say), and no word starting with for, into, insert, update, delete or merge.
    /// A keyword is never split by a comment, a quote or an escape (PostgreSQL docs 4.1.1), so such a text is a read
    /// with no traits, and the lexer walk is not needed; pgbench -S and most ORM lookups are such texts. Anything
    /// else (a second statement after the ';', a leading comment, those bytes inside a string) only means the walk
    /// decides.
    /// </summary>
    private static bool IsPlainSelect(ReadOnlySpan<byte> sql)
    {
        int start = sql.IndexOfAnyExcept(" \t\r\n"u8);
        if (start < 0 || sql.Length - start < 7 || !Ascii.EqualsIgnoreCase(sql.Slice(start, 6), "select"u8) || IsWordByte(sql[start + 6]))
        {
            return false;
        }

        var rest = sql[(start + 6)..];
        int semicolon = rest.IndexOf((byte)';');
        if (semicolon >= 0)
        {
            if (rest[(semicolon + 1)..].IndexOfAnyExcept(" \t\r\n;"u8) >= 0)
            {
                return false;
            }

            rest = rest[..semicolon];
        }

        if (rest.Contains((byte)'('))
        {
            return false;
        }

        return !HasWriteWordStart(rest);
    }

    // Write words: for, into, insert, update, delete, merge.
    private static readonly KeywordScan s_writeWords = new("fiudm", "onpe");

    private static bool HasWriteWordStart(ReadOnlySpan<byte> text) => s_writeWords.Any<WriteWord>(text);

    private readonly struct WriteWord : IKeywordMatch
    {
        public static bool Matches(ReadOnlySpan<byte> text, int position) => StartsWriteWord(text[position..]);
    }

    private static bool IsWordByte(byte b) => (uint)((b | 0x20) - 'a') <= 'z' - 'a' || b == '_' || b >= 0x80 || (uint)(b - '0') <= 9 || b == '$';

    private static bool StartsWriteWord(ReadOnlySpan<byte> text) => (text[0] | 0x20) switch
    {
        'f' => StartsWithIgnoreCase(text, "for"u8),
        'i' => StartsWithIgnoreCase(text, "into"u8) || StartsWithIgnoreCase(text, "insert"u8),
        'u' => StartsWithIgnoreCase(text, "update"u8),
        'd' => StartsWithIgnoreCase(text, "delete"u8),
        _ => StartsWithIgnoreCase(text, "merge"u8),
    };

    private static bool StartsWithIgnoreCase(ReadOnlySpan<byte> text, ReadOnlySpan<byte> lowerAscii) =>
        text.Length >= lowerAscii.Length && Ascii.EqualsIgnoreCase(text[..lowerAscii.Length], lowerAscii);

    private static QueryTraits Walk(ReadOnlySpan<byte> sql, ClassifierOptions options)
    {
        var traits = QueryTraits.None;
        var s = new TokenStream(sql);
        int statements = 0;
        while (true)
        {
            var t = s.Peek();
            if (t.Kind == SqlTokenKind.End)
            {
                break;
            }

            if (t.Kind == SqlTokenKind.Semicolon)
            {
                s.Next();
                continue;
            }

            statements++;
            traits |= Statement(ref s, options);
            if (s.HoldsNoFurtherStatement())
            {
                break;
            }

            SkipToStatementEnd(ref s);
        }

        if (statements > 1)
        {
            traits |= QueryTraits.MultipleStatements;
        }

        return traits;
    }

    /// <summary>Classifies one statement; stops at (not past) its ';' or the end, or earlier (the caller skips the rest).</summary>
    private static QueryTraits Statement(ref TokenStream s, ClassifierOptions options)
    {
        var first = s.Next();
        while (first.Kind == SqlTokenKind.OpenParen)
        {
            first = s.Next();
        }

        if (first.Kind != SqlTokenKind.Word)
        {
            return first.Kind is SqlTokenKind.End or SqlTokenKind.Semicolon ? QueryTraits.None : QueryTraits.Write;
        }

        var w = s.TextOf(first);
        if (Is(w, "select"u8))
        {
            return ScanRead(ref s, options, selectInto: true);
        }

        if (Is(w, "values"u8) || Is(w, "table"u8) || Is(w, "with"u8))
        {
            return ScanRead(ref s, options, selectInto: false);
        }

        if (Is(w, "show"u8))
        {
            return QueryTraits.None;
        }

        if (Is(w, "fetch"u8) || Is(w, "move"u8) || Is(w, "close"u8) || Is(w, "savepoint"u8) || Is(w, "release"u8) || Is(w, "deallocate"u8))
        {
            return QueryTraits.TransactionState;
        }

        if (Is(w, "explain"u8))
        {
            return Explain(ref s, options);
        }

        if (Is(w, "begin"u8) || Is(w, "start"u8))
        {
            return QueryTraits.TransactionStart | TransactionModes(ref s);
        }

        if (Is(w, "commit"u8) || Is(w, "end"u8))
        {
            return NextWordIs(ref s, "prepared"u8) ? QueryTraits.Write : QueryTraits.TransactionEnd;
        }

        if (Is(w, "rollback"u8) || Is(w, "abort"u8))
        {
            var next = s.PeekWord();
            return Is(next, "to"u8) ? QueryTraits.TransactionState : Is(next, "prepared"u8) ? QueryTraits.Write : QueryTraits.TransactionEnd;
        }

        if (Is(w, "set"u8))
        {
            var next = s.PeekWord();
            if (Is(next, "local"u8) || Is(next, "transaction"u8) || Is(next, "constraints"u8))
            {
                return QueryTraits.TransactionState;
            }

            if (Is(next, "role"u8))
            {
                return QueryTraits.SessionSetting | QueryTraits.SessionAuthorization;
            }

            if (Is(next, "session"u8))
            {
                s.Next();
                var after = s.PeekWord();
                if (Is(after, "authorization"u8) || Is(after, "role"u8))
                {
                    return QueryTraits.SessionSetting | QueryTraits.SessionAuthorization;
                }

                if (Is(after, "characteristics"u8))
                {
                    // Session defaults FastPool does not carry between servers: the client is pinned where this
                    // runs, so it runs on the primary (pinned to a standby, the client's writes would be refused).
                    return QueryTraits.SessionSetting | QueryTraits.Write;
                }
            }

            return QueryTraits.SessionSetting;
        }

        if (Is(w, "reset"u8))
        {
            var next = s.PeekWord();
            return QueryTraits.SessionSetting | (Is(next, "role"u8) || Is(next, "session"u8) ? QueryTraits.SessionAuthorization : QueryTraits.None);
        }

        if (Is(w, "discard"u8))
        {
            return QueryTraits.SessionSetting;
        }

        if (Is(w, "listen"u8) || Is(w, "unlisten"u8))
        {
            return QueryTraits.Write | QueryTraits.Listen;
        }

        if (Is(w, "create"u8))
        {
            return QueryTraits.Write | (IsTemporary(ref s) ? QueryTraits.TemporaryObject : QueryTraits.None);
        }

        if (Is(w, "prepare"u8))
        {
            return Prepare(ref s, options);
        }

        if (Is(w, "declare"u8))
        {
            return Declare(ref s, options);
        }

        if (Is(w, "copy"u8))
        {
            return Copy(ref s);
        }

        // INSERT, UPDATE, DELETE, MERGE, DDL, EXECUTE, DO, CALL, VACUUM, LOCK, NOTIFY and anything unknown.
        return QueryTraits.Write;
    }

    /// <summary>The rest of a read candidate: anything that makes it a write.</summary>
    private static QueryTraits ScanRead(ref TokenStream s, ClassifierOptions options, bool selectInto)
    {
        var traits = QueryTraits.None;
        int depth = 0;

        // The two tokens before the current one: a function call's schema (schema . name) is read from them only
        // when a call is found, so the common token costs two copies and nothing else.
        SqlToken t = default, previous = default, beforePrevious = default;
        while (true)
        {
            beforePrevious = previous;
            previous = t;
            t = s.Peek();
            switch (t.Kind)
            {
                case SqlTokenKind.End:
                case SqlTokenKind.Semicolon:
                    return traits;
                case SqlTokenKind.OpenParen:
                    depth++;
                    s.Next();
                    continue;
                case SqlTokenKind.CloseParen:
                    depth--;
                    s.Next();
                    continue;
                case SqlTokenKind.QuotedIdentifier:
                    s.Next();
                    if (s.Peek().Kind == SqlTokenKind.OpenParen)
                    {
                        var quoted = s.TextOf(t);
                        traits |= FunctionCall(quoted[1..^1], Qualified(ref s, beforePrevious, previous, t), options);
                    }

                    continue;
                case SqlTokenKind.Word:
                    break;
                default:
                    s.Next();
                    continue;
            }

            s.Next();
            var w = s.TextOf(t);
            if (s.Peek().Kind == SqlTokenKind.OpenParen)
            {
                traits |= FunctionCall(w, Qualified(ref s, beforePrevious, previous, t), options);
                continue;
            }

            if (Is(w, "for"u8))
            {
                // Row-locking clauses (SELECT docs, "The Locking Clause") need the primary.
                var next = s.PeekWord();
                if (Is(next, "update"u8) || Is(next, "share"u8) || Is(next, "no"u8) || Is(next, "key"u8))
                {
                    traits |= QueryTraits.Write;
                }
            }
            else if (Is(w, "into"u8) && selectInto && depth == 0)
            {
                // SELECT ... INTO creates a table.
                traits |= QueryTraits.Write;
            }
            else if (Is(w, "insert"u8) || Is(w, "update"u8) || Is(w, "delete"u8) || Is(w, "merge"u8))
            {
                // A data-modifying statement in WITH (7.8.4); as a bare column name it is merely conservative.
                traits |= QueryTraits.Write;
            }
        }
    }

    /// <summary>The text of <c>schema.name</c> when <paramref name="name"/> is qualified so; empty otherwise.</summary>
    private static ReadOnlySpan<byte> Qualified(ref TokenStream s, SqlToken schema, SqlToken dot, SqlToken name) =>
        dot.Kind == SqlTokenKind.Symbol && dot.Length == 1 && s.TextOf(dot)[0] == (byte)'.'
        && schema.Kind is SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier
            ? s.TextOf(new SqlToken(SqlTokenKind.Word, schema.Start, name.Start + name.Length - schema.Start))
            : default;

    private static QueryTraits FunctionCall(ReadOnlySpan<byte> name, ReadOnlySpan<byte> qualified, ClassifierOptions options)
    {
        // An entry that cannot be decided (a pattern timing out) takes the safe side: the primary.
        if (options.WriteFunctions.Match(name, qualified) != FunctionMatch.No)
        {
            var traits = QueryTraits.Write;
            Span<byte> lower = stackalloc byte[Math.Min(name.Length, 64)];
            if (Ascii.ToLower(name, lower, out _) == System.Buffers.OperationStatus.Done
                && lower.StartsWith("pg_"u8) && lower.IndexOf("advisory"u8) >= 0 && lower.IndexOf("xact"u8) < 0)
            {
                // Session-level advisory locks stay with the server connection that took them.
                traits |= QueryTraits.AdvisoryLock;
            }

            return traits;
        }

        if (name.Length == "set_config".Length && Ascii.EqualsIgnoreCase(name, "set_config"u8))
        {
            return QueryTraits.SessionSetting;
        }

        if (options.ReadOnlyFunctions.Count > 0 && !IsParenthesizedKeyword(name) && options.ReadOnlyFunctions.Match(name, qualified) != FunctionMatch.Yes)
        {
            return QueryTraits.Write;
        }

        return QueryTraits.None;
    }

    /// <summary>Key words and type names that are followed by '(' without being function calls.</summary>
    internal static bool IsParenthesizedKeyword(ReadOnlySpan<byte> w) =>
        Is(w, "in"u8) || Is(w, "exists"u8) || Is(w, "any"u8) || Is(w, "all"u8) || Is(w, "some"u8) || Is(w, "values"u8)
        || Is(w, "as"u8) || Is(w, "from"u8) || Is(w, "join"u8) || Is(w, "where"u8) || Is(w, "and"u8) || Is(w, "or"u8)
        || Is(w, "not"u8) || Is(w, "on"u8) || Is(w, "using"u8) || Is(w, "lateral"u8) || Is(w, "select"u8) || Is(w, "row"u8)
        || Is(w, "array"u8) || Is(w, "over"u8) || Is(w, "filter"u8) || Is(w, "cast"u8) || Is(w, "coalesce"u8)
        || Is(w, "nullif"u8) || Is(w, "greatest"u8) || Is(w, "least"u8) || Is(w, "extract"u8) || Is(w, "within"u8)
        || Is(w, "varchar"u8) || Is(w, "char"u8) || Is(w, "numeric"u8) || Is(w, "decimal"u8) || Is(w, "timestamp"u8)
        || Is(w, "time"u8) || Is(w, "interval"u8) || Is(w, "bit"u8) || Is(w, "varbit"u8) || Is(w, "then"u8)
        || Is(w, "else"u8) || Is(w, "when"u8) || Is(w, "by"u8) || Is(w, "union"u8) || Is(w, "intersect"u8) || Is(w, "except"u8);

    private static QueryTraits Explain(ref TokenStream s, ClassifierOptions options)
    {
        bool analyze = false;
        if (s.Peek().Kind == SqlTokenKind.OpenParen)
        {
            s.Next();
            while (s.Peek().Kind is not (SqlTokenKind.CloseParen or SqlTokenKind.End or SqlTokenKind.Semicolon))
            {
                var t = s.Next();
                if (t.Kind == SqlTokenKind.Word && (Is(s.TextOf(t), "analyze"u8) || Is(s.TextOf(t), "analyse"u8)))
                {
                    // ANALYZE [ boolean ]: off/false/0 do not run the statement.
                    var value = s.PeekWord();
                    analyze = !(Is(value, "false"u8) || Is(value, "off"u8));
                }
            }

            if (s.Peek().Kind == SqlTokenKind.CloseParen)
            {
                s.Next();
            }
        }
        else
        {
            while (true)
            {
                var w = s.PeekWord();
                if (Is(w, "analyze"u8) || Is(w, "analyse"u8))
                {
                    analyze = true;
                }
                else if (!Is(w, "verbose"u8))
                {
                    break;
                }

                s.Next();
            }
        }

        // Plain EXPLAIN only plans; EXPLAIN ANALYZE runs the statement, so it goes where the statement would.
        var inner = Statement(ref s, options);
        return analyze ? inner : QueryTraits.None;
    }

    private static QueryTraits Prepare(ref TokenStream s, ClassifierOptions options)
    {
        var name = s.Next();
        if (name.Kind == SqlTokenKind.Word && Is(s.TextOf(name), "transaction"u8))
        {
            // Two-phase commit: ends the transaction on this session.
            return QueryTraits.Write | QueryTraits.TransactionEnd;
        }

        // PREPARE name [ ( types ) ] AS statement
        while (true)
        {
            var t = s.Next();
            if (t.Kind is SqlTokenKind.End or SqlTokenKind.Semicolon)
            {
                return QueryTraits.Prepare | QueryTraits.Write;
            }

            if (t.Kind == SqlTokenKind.Word && Is(s.TextOf(t), "as"u8))
            {
                return QueryTraits.Prepare | Statement(ref s, options);
            }
        }
    }

    private static QueryTraits Declare(ref TokenStream s, ClassifierOptions options)
    {
        // DECLARE name [ BINARY ] [ ASENSITIVE | INSENSITIVE ] [ [ NO ] SCROLL ] CURSOR [ { WITH | WITHOUT } HOLD ] FOR query
        var traits = QueryTraits.TransactionState;
        bool with = false;
        while (true)
        {
            var t = s.Next();
            if (t.Kind is SqlTokenKind.End or SqlTokenKind.Semicolon)
            {
                return traits | QueryTraits.Write;
            }

            if (t.Kind != SqlTokenKind.Word)
            {
                continue;
            }

            var w = s.TextOf(t);
            if (Is(w, "hold"u8) && with)
            {
                traits |= QueryTraits.HoldCursor;
            }

            with = Is(w, "with"u8);
            if (Is(w, "for"u8))
            {
                return traits | Statement(ref s, options);
            }
        }
    }

    private static QueryTraits Copy(ref TokenStream s)
    {
        // COPY table FROM ... writes; COPY table / (query) TO ... reads (a data-modifying query inside writes).
        var traits = QueryTraits.None;
        int depth = 0;
        while (true)
        {
            var t = s.Peek();
            if (t.Kind is SqlTokenKind.End or SqlTokenKind.Semicolon)
            {
                return traits;
            }

            s.Next();
            if (t.Kind == SqlTokenKind.OpenParen)
            {
                depth++;
            }
            else if (t.Kind == SqlTokenKind.CloseParen)
            {
                depth--;
            }
            else if (t.Kind == SqlTokenKind.Word)
            {
                var w = s.TextOf(t);
                if ((depth == 0 && Is(w, "from"u8)) || Is(w, "insert"u8) || Is(w, "update"u8) || Is(w, "delete"u8) || Is(w, "merge"u8))
                {
                    traits |= QueryTraits.Write;
                }
            }
        }
    }

    private static bool IsTemporary(ref TokenStream s)
    {
        // CREATE [ OR REPLACE ] [ GLOBAL | LOCAL ] { TEMPORARY | TEMP } ...
        for (int i = 0; i < 4; i++)
        {
            var w = s.PeekWord();
            if (Is(w, "temp"u8) || Is(w, "temporary"u8))
            {
                return true;
            }

            if (!(Is(w, "or"u8) || Is(w, "replace"u8) || Is(w, "global"u8) || Is(w, "local"u8)))
            {
                return InTemporarySchema(ref s);
            }

            s.Next();
        }

        return false;
    }

    /// <summary>
    /// CREATE [ UNLOGGED ] { TABLE | VIEW | SEQUENCE } [ IF NOT EXISTS ] pg_temp.name: a temporary object too, named
    /// by the session's temporary schema (PostgreSQL docs 5.9.6 "The Schema Search Path", CREATE TABLE).
    /// </summary>
    private static bool InTemporarySchema(ref TokenStream s)
    {
        if (Is(s.PeekWord(), "unlogged"u8))
        {
            s.Next();
        }

        var kind = s.PeekWord();
        if (!(Is(kind, "table"u8) || Is(kind, "view"u8) || Is(kind, "sequence"u8)))
        {
            return false;
        }

        s.Next();
        if (Is(s.PeekWord(), "if"u8))
        {
            // IF NOT EXISTS
            s.Next();
            s.Next();
            s.Next();
        }

        var name = s.PeekWord();
        return name.Length >= 7 && Ascii.EqualsIgnoreCase(name[..7], "pg_temp"u8) && (name.Length == 7 || name[7] == (byte)'_');
    }

    /// <summary>
    /// The transaction modes after BEGIN / START TRANSACTION (PostgreSQL docs, SET TRANSACTION): READ ONLY, and
    /// whether the transaction wants a snapshot of its own (REPEATABLE READ, SERIALIZABLE) or says READ WRITE.
    /// </summary>
    private static QueryTraits TransactionModes(ref TokenStream s)
    {
        var traits = QueryTraits.None;
        bool afterRead = false;
        while (s.Peek().Kind is not (SqlTokenKind.End or SqlTokenKind.Semicolon))
        {
            var t = s.Next();
            if (t.Kind != SqlTokenKind.Word)
            {
                afterRead = false;
                continue;
            }

            var w = s.TextOf(t);
            if (afterRead && Is(w, "only"u8))
            {
                traits |= QueryTraits.ReadOnlyTransaction;
            }
            else if ((afterRead && Is(w, "write"u8)) || Is(w, "repeatable"u8))
            {
                traits |= QueryTraits.SnapshotTransaction;
            }
            else if (Is(w, "serializable"u8))
            {
                traits |= QueryTraits.SnapshotTransaction | QueryTraits.SerializableTransaction;
            }

            afterRead = Is(w, "read"u8);
        }

        return traits;
    }

    private static bool NextWordIs(ref TokenStream s, ReadOnlySpan<byte> word) => Is(s.PeekWord(), word);

    private static void SkipToStatementEnd(ref TokenStream s)
    {
        while (s.Peek().Kind is not (SqlTokenKind.End or SqlTokenKind.Semicolon))
        {
            s.Next();
        }
    }

    /// <summary>
    /// Key word comparison; <paramref name="keyword"/> is lower-case ASCII letters. OR-ing 0x20 folds exactly the
    /// upper-case letters onto the lower-case ones, and no other byte onto a letter, so this is exact and cheaper
    /// than a general case-insensitive compare on these short words.
    /// </summary>
    private static bool Is(ReadOnlySpan<byte> word, ReadOnlySpan<byte> keyword)
    {
        if (word.Length != keyword.Length)
        {
            return false;
        }

        for (int i = 0; i < word.Length; i++)
        {
            if ((word[i] | 0x20) != keyword[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The lexer with one token of lookahead.</summary>
    private ref struct TokenStream
    {
        private SqlLexer _lexer;
        private SqlToken _peeked;
        private bool _hasPeeked;

        public TokenStream(ReadOnlySpan<byte> text)
        {
            _lexer = new SqlLexer(text);
            _peeked = default;
            _hasPeeked = false;
        }

        public SqlToken Peek()
        {
            if (!_hasPeeked)
            {
                _peeked = _lexer.Next();
                _hasPeeked = true;
            }

            return _peeked;
        }

        public SqlToken Next()
        {
            if (_hasPeeked)
            {
                _hasPeeked = false;
                return _peeked;
            }

            return _lexer.Next();
        }

        /// <summary>The next token's text when it is a word, else empty.</summary>
        public ReadOnlySpan<byte> PeekWord()
        {
            var t = Peek();
            return t.Kind == SqlTokenKind.Word ? _lexer.TextOf(t) : default;
        }

        public readonly ReadOnlySpan<byte> TextOf(SqlToken token) => _lexer.TextOf(token);

        /// <summary>
        /// True when no ';' is left, or only blanks and ';' follow the first one left: then no statement follows this
        /// one wherever the ';' falls (inside an unterminated string or comment, the lexer would end the text there),
        /// and the tokens between need not be read. An UPDATE is decided by its first word; this spares the walk
        /// over the rest of it.
        /// </summary>
        public readonly bool HoldsNoFurtherStatement()
        {
            var rest = _lexer.Rest(_hasPeeked ? _peeked.Start : -1);
            int semicolon = rest.IndexOf((byte)';');
            return semicolon < 0 || rest[(semicolon + 1)..].IndexOfAnyExcept(" \t\r\n\f\v;"u8) < 0;
        }
    }
}
