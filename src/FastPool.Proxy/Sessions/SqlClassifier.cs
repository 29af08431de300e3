using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Sessions;

/// <summary>What transaction pooling must know about a query text besides forwarding it.</summary>
[Flags]
internal enum QueryTraits : ushort
{
    None = 0,

    /// <summary>SET or RESET of one parameter at session level: read it with <see cref="SqlClassifier.ReadSettingChanges"/>.</summary>
    Setting = 1,

    /// <summary>RESET ALL or DISCARD ALL: every parameter back to the session default.</summary>
    ResetAll = 2,

    /// <summary>DISCARD ALL: also drops temporary tables, prepared statements, listeners, advisory locks (unpins).</summary>
    DiscardAll = 4,

    /// <summary>ROLLBACK or ABORT: settings changed in the transaction are undone (PostgreSQL docs, SET).</summary>
    Rollback = 8,

    /// <summary>UNLISTEN *.</summary>
    UnlistenAll = 16,

    /// <summary>DEALLOCATE [PREPARE] ALL: every prepared statement of the session is gone.</summary>
    DeallocateAll = 32,

    /// <summary>SAVEPOINT, RELEASE, ROLLBACK TO, or COMMIT AND CHAIN: which settings of the transaction count changes mid-way.</summary>
    TransactionControl = 64,

    // The statements below undo one kind of session state, so the pin it caused ends with them (drivers run them
    // when a connection goes back to their pool: Npgsql's reset is SET SESSION AUTHORIZATION DEFAULT; RESET ALL;
    // CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD SEQUENCES; DISCARD TEMP).

    /// <summary>SET SESSION AUTHORIZATION DEFAULT or RESET SESSION AUTHORIZATION (the role goes back too).</summary>
    SessionAuthorizationDefault = 128,

    /// <summary>DISCARD TEMP[ORARY]: the session's temporary tables are dropped.</summary>
    DiscardTemp = 256,

    /// <summary>pg_advisory_unlock_all(): every session-level advisory lock is released.</summary>
    AdvisoryUnlockAll = 512,

    /// <summary>CLOSE ALL: every cursor, WITH HOLD ones included, is closed.</summary>
    CloseAll = 1024,
}

/// <summary>What a <see cref="SettingChange"/> is: a SET or RESET, or a statement that decides which of them count.</summary>
internal enum SessionEvent : byte
{
    /// <summary>SET (with its statement) or RESET (without).</summary>
    Setting,

    /// <summary>SAVEPOINT name.</summary>
    Savepoint,

    /// <summary>RELEASE [SAVEPOINT] name: the savepoint and those after it are gone; the changes stay.</summary>
    Release,

    /// <summary>ROLLBACK TO [SAVEPOINT] name: the changes since that savepoint are undone; it stays.</summary>
    RollbackTo,

    /// <summary>ROLLBACK or ABORT (with or without AND CHAIN): the transaction's changes are undone.</summary>
    Rollback,

    /// <summary>COMMIT or END AND CHAIN: the changes so far are committed; a new transaction starts.</summary>
    CommitChain,
}

/// <summary>One session-level SET or RESET a client ran, as FastPool replays it on another server.</summary>
/// <param name="Name">The parameter, lower case (SET SCHEMA is search_path, SET ROLE is role); null for RESET ALL.</param>
/// <param name="Statement">The statement text as the client sent it (UTF-8, the encoding FastPool sends its own queries in); null for a RESET.</param>
/// <param name="Event">A setting, or a transaction-control statement (then <paramref name="Name"/> is its savepoint, if any).</param>
internal readonly record struct SettingChange(string? Name, string? Statement, SessionEvent Event = SessionEvent.Setting);

/// <summary>
/// Conservative recognition of statements whose effect outlives the transaction (PostgreSQL docs: SET, RESET,
/// DISCARD, LISTEN, PREPARE, DECLARE, CREATE TABLE "TEMPORARY", 9.28.10 "Advisory Lock Functions", SET SESSION
/// AUTHORIZATION). It looks at every statement of a multi-statement text; text it cannot attribute exactly to a
/// parameter (SET SESSION CHARACTERISTICS) reports <see cref="PinReasons.Untracked"/>, so that state is never
/// handed to another client. Allocation-free; only <see cref="ReadSettingChanges"/>, which runs when a SET was
/// seen, allocates.
/// </summary>
internal static class SqlClassifier
{
    public static QueryTraits Classify(ReadOnlySpan<byte> sql, out PinReasons pins)
    {
        var traits = QueryTraits.None;
        pins = PinReasons.None;
        return MentionsAnyKeyword(sql) ? ClassifyByLexer(sql, out pins) : traits;
    }

    /// <summary><see cref="Classify"/> without the keyword pre-check: every text is walked (tests compare the two).</summary>
    internal static QueryTraits ClassifyByLexer(ReadOnlySpan<byte> sql, out PinReasons pins)
    {
        var traits = QueryTraits.None;
        pins = PinReasons.None;
        var lexer = new SqlLexer(sql);
        while (true)
        {
            var token = lexer.Next();
            if (token == SqlToken.End)
            {
                return traits;
            }

            if (token != SqlToken.Word)
            {
                if (token != SqlToken.Semicolon)
                {
                    ScanRest(ref lexer, ref pins, ref traits, declare: false);
                }

                continue;
            }

            if (lexer.Is("set"u8))
            {
                traits |= ClassifySet(ref lexer, ref pins);
            }
            else if (lexer.Is("reset"u8))
            {
                var next = lexer.Next();
                if (next == SqlToken.Word && lexer.Is("session"u8))
                {
                    // RESET SESSION AUTHORIZATION.
                    traits |= QueryTraits.SessionAuthorizationDefault;
                    lexer.SkipStatement();
                    continue;
                }

                traits |= next == SqlToken.Word && lexer.Is("all"u8) ? QueryTraits.ResetAll : QueryTraits.Setting;
                if (next is not (SqlToken.Semicolon or SqlToken.End))
                {
                    ScanRest(ref lexer, ref pins, ref traits, declare: false);
                }
            }
            else if (lexer.Is("discard"u8))
            {
                if (lexer.Next() == SqlToken.Word && lexer.Is("all"u8))
                {
                    traits |= QueryTraits.ResetAll | QueryTraits.DiscardAll;
                }
                else if (lexer.Is("temp"u8) || lexer.Is("temporary"u8))
                {
                    traits |= QueryTraits.DiscardTemp;
                }

                lexer.SkipStatement();
            }
            else if (lexer.Is("deallocate"u8))
            {
                var next = lexer.Next();
                if (next == SqlToken.Word && lexer.Is("prepare"u8))
                {
                    next = lexer.Next();
                }

                if (next == SqlToken.Word && lexer.Is("all"u8))
                {
                    traits |= QueryTraits.DeallocateAll;
                }

                if (next is not (SqlToken.Semicolon or SqlToken.End))
                {
                    lexer.SkipStatement();
                }
            }
            else if (lexer.Is("close"u8))
            {
                if (lexer.Next() == SqlToken.Word && lexer.Is("all"u8))
                {
                    traits |= QueryTraits.CloseAll;
                }

                lexer.SkipStatement();
            }
            else if (lexer.Is("listen"u8))
            {
                pins |= PinReasons.Listen;
                lexer.SkipStatement();
            }
            else if (lexer.Is("unlisten"u8))
            {
                if (lexer.Next() == SqlToken.Symbol && lexer.First == '*')
                {
                    traits |= QueryTraits.UnlistenAll;
                }

                lexer.SkipStatement();
            }
            else if (lexer.Is("prepare"u8))
            {
                // PREPARE TRANSACTION is two-phase commit: it ends the transaction and leaves nothing in the session.
                if (!(lexer.Next() == SqlToken.Word && lexer.Is("transaction"u8)))
                {
                    pins |= PinReasons.Prepare;
                }

                lexer.SkipStatement();
            }
            else if (lexer.Is("rollback"u8) || lexer.Is("abort"u8))
            {
                traits |= RollsBackTo(ref lexer) ? QueryTraits.TransactionControl : QueryTraits.Rollback;
                SkipRest(ref lexer);
            }
            else if (lexer.Is("savepoint"u8) || lexer.Is("release"u8))
            {
                traits |= QueryTraits.TransactionControl;
                lexer.SkipStatement();
            }
            else if (lexer.Is("commit"u8) || lexer.Is("end"u8))
            {
                if (Chains(ref lexer))
                {
                    traits |= QueryTraits.TransactionControl;
                }
            }
            else
            {
                bool declare = lexer.Is("declare"u8);
                CheckWord(ref lexer, ref pins, ref traits, previous: default, declare);
                ScanRest(ref lexer, ref pins, ref traits, declare);
            }
        }
    }

    /// <summary>After ROLLBACK or ABORT: whether it is ROLLBACK [WORK | TRANSACTION] TO; the lexer is left on the word after.</summary>
    private static bool RollsBackTo(ref SqlLexer lexer)
    {
        var token = lexer.Next();
        if (token == SqlToken.Word && (lexer.Is("work"u8) || lexer.Is("transaction"u8)))
        {
            token = lexer.Next();
        }

        return token == SqlToken.Word && lexer.Is("to"u8);
    }

    /// <summary>After COMMIT or END: whether AND CHAIN follows (not AND NO CHAIN); the statement is consumed.</summary>
    private static bool Chains(ref SqlLexer lexer)
    {
        bool afterAnd = false;
        bool chain = false;
        for (var token = lexer.Next(); token is not (SqlToken.Semicolon or SqlToken.End); token = lexer.Next())
        {
            chain |= afterAnd && token == SqlToken.Word && lexer.Is("chain"u8);
            afterAnd = token == SqlToken.Word && lexer.Is("and"u8);
        }

        return chain;
    }

    /// <summary>
    /// Whether the text holds, in any case, one of the words <see cref="Classify"/> acts on. A keyword is never split
    /// by a comment, a quote or an escape (PostgreSQL docs 4.1.1), so a text without any of them has no traits and no
    /// pins, and most statements (plain SELECTs, INSERTs) are answered by this one pass instead of a lexer walk that
    /// also checks every word. "temp" also covers TEMPORARY; the false positives (an identifier like "holder" or
    /// "settings") only mean the lexer decides.
    /// </summary>
    private static bool MentionsAnyKeyword(ReadOnlySpan<byte> sql) => s_keywords.Any<SessionKeyword>(sql);

    private readonly struct SessionKeyword : Routing.Classification.IKeywordMatch
    {
        public static bool Matches(ReadOnlySpan<byte> text, int i)
        {
            // The lexer only starts a word after a byte that cannot continue one, so a keyword it acts on starts where
            // the byte before is not a letter (nor part of a multi-byte character). advisory_lock is found inside a
            // word (pg_try_advisory_lock), so any "ad" is a candidate for it.
            int lower = text[i] | 0x20;
            bool wordStart = i == 0 || !(text[i - 1] >= 0x80 || (uint)((text[i - 1] | 0x20) - 'a') < 26);

            // temp, hold and set_config count anywhere in a statement; the others only as its first word.
            return (wordStart && StartsKeyword(text[i..], lower) && (lower is 't' or 'h' || MayStartStatement(text, i)
                    || (lower == 's' && StartsWithIgnoreCase(text[i..], "set_config"u8))))
                || (lower == 'a' && (StartsWithIgnoreCase(text[i..], "advisory_lock"u8) || StartsWithIgnoreCase(text[i..], "advisory_unlock_all"u8)));
        }

        /// <summary>
        /// False when the token before <paramref name="i"/> is surely in the same statement: the last byte before the
        /// blanks is not ';' or the '/' that ends a comment, and no line break (the end of a -- comment) is among the
        /// blanks. So "SET" in UPDATE ... SET needs no lexer walk, while anything that may be a statement's start does.
        /// </summary>
        private static bool MayStartStatement(ReadOnlySpan<byte> text, int i)
        {
            int before = text[..i].LastIndexOfAnyExcept(" \t\f\v"u8);
            return before < 0 || text[before] is (byte)';' or (byte)'/' or (byte)'\n' or (byte)'\r';
        }
    }

    // The words below, by first and second letter: set/savepoint, reset/rollback/release, discard/deallocate, listen,
    // unlisten, prepare, abort, temp, hold, commit/close, end; and "ad" of advisory_lock and advisory_unlock_all anywhere.
    private static readonly Routing.Classification.KeywordScan s_keywords = new("srdlupathce", "eoinrbal", anywhere: "ad");

    /// <summary>Whether a word starting with <paramref name="lower"/> begins like a keyword <see cref="Classify"/> acts on.</summary>
    private static bool StartsKeyword(ReadOnlySpan<byte> rest, int lower) => lower switch
    {
        's' => StartsWithIgnoreCase(rest, "set"u8) || StartsWithIgnoreCase(rest, "savepoint"u8),
        'r' => StartsWithIgnoreCase(rest, "reset"u8) || StartsWithIgnoreCase(rest, "rollback"u8) || StartsWithIgnoreCase(rest, "release"u8),
        'c' => StartsWithIgnoreCase(rest, "commit"u8) || StartsWithIgnoreCase(rest, "close"u8),
        'e' => StartsWithIgnoreCase(rest, "end"u8),
        'd' => StartsWithIgnoreCase(rest, "discard"u8) || StartsWithIgnoreCase(rest, "deallocate"u8),
        'l' => StartsWithIgnoreCase(rest, "listen"u8),
        'u' => StartsWithIgnoreCase(rest, "unlisten"u8),
        'p' => StartsWithIgnoreCase(rest, "prepare"u8),
        'a' => StartsWithIgnoreCase(rest, "abort"u8),
        't' => StartsWithIgnoreCase(rest, "temp"u8),
        'h' => StartsWithIgnoreCase(rest, "hold"u8),
        _ => false,
    };

    // The second letter first: most candidates (every 'a' for advisory_lock) fail there, without a call.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool StartsWithIgnoreCase(ReadOnlySpan<byte> text, ReadOnlySpan<byte> lowerAscii) =>
        text.Length >= lowerAscii.Length && (text[1] | 0x20) == lowerAscii[1] && SqlLexer.EqualsIgnoreCase(text[..lowerAscii.Length], lowerAscii);

    private static QueryTraits ClassifySet(ref SqlLexer lexer, ref PinReasons pins)
    {
        var traits = QueryTraits.None;
        if (lexer.Next() != SqlToken.Word)
        {
            // SET "quoted.name" = ...: a parameter too.
            traits = QueryTraits.Setting;
        }
        else if (lexer.Is("local"u8) || lexer.Is("transaction"u8) || lexer.Is("constraints"u8))
        {
            // Transaction-scoped: gone when the transaction ends, so nothing follows the client.
        }
        else if (lexer.Is("session"u8))
        {
            lexer.Next();
            if (lexer.Is("authorization"u8))
            {
                if (lexer.Next() == SqlToken.Word && lexer.Is("default"u8))
                {
                    traits = QueryTraits.SessionAuthorizationDefault;
                }
                else
                {
                    pins |= PinReasons.SessionAuthorization;
                }
            }
            else if (lexer.Is("characteristics"u8))
            {
                pins |= PinReasons.Untracked;
            }
            else
            {
                traits = QueryTraits.Setting;
            }
        }
        else
        {
            traits = QueryTraits.Setting;
        }

        lexer.SkipStatement();
        return traits;
    }

    /// <summary>
    /// Whether the set_config call at the lexer's word has is_local = true (a copy of the lexer reads ahead): its third
    /// argument is the word true or a quoted true/t/on. Anything else (false, a parameter, an expression) counts as not local.
    /// </summary>
    private static bool IsLocalSetConfig(SqlLexer lexer)
    {
        if (lexer.Next() != SqlToken.Symbol || lexer.First != (byte)'(')
        {
            return false;
        }

        int depth = 1;
        int commas = 0;
        int thirdTokens = 0;
        bool local = false;
        for (var token = lexer.Next(); token is not (SqlToken.End or SqlToken.Semicolon); token = lexer.Next())
        {
            if (token == SqlToken.Symbol && lexer.First is (byte)'(' or (byte)')' or (byte)',')
            {
                depth += lexer.First == (byte)'(' ? 1 : lexer.First == (byte)')' ? -1 : 0;
                if (depth == 0)
                {
                    return commas == 2 && thirdTokens == 1 && local;
                }

                if (depth == 1 && lexer.First == (byte)',')
                {
                    commas++;
                }

                if (commas == 2 && lexer.First != (byte)',')
                {
                    thirdTokens++;
                }

                continue;
            }

            if (commas == 2 && depth == 1)
            {
                thirdTokens++;
                var text = lexer.Text;
                local = token == SqlToken.Word
                    ? lexer.Is("true"u8)
                    : token == SqlToken.Quoted && (SqlLexer.EqualsIgnoreCase(text, "'true'"u8) || SqlLexer.EqualsIgnoreCase(text, "'t'"u8) || SqlLexer.EqualsIgnoreCase(text, "'on'"u8));
            }
        }

        return false;
    }

    /// <summary>Walks the rest of a statement looking at every word for state that pins.</summary>
    private static void ScanRest(ref SqlLexer lexer, ref PinReasons pins, ref QueryTraits traits, bool declare)
    {
        int previousStart = lexer.Start;
        int previousLength = lexer.Length;
        while (true)
        {
            var token = lexer.Next();
            if (token is SqlToken.Semicolon or SqlToken.End)
            {
                return;
            }

            if (token == SqlToken.Word)
            {
                CheckWord(ref lexer, ref pins, ref traits, lexer.Slice(previousStart, previousLength), declare);
            }

            previousStart = lexer.Start;
            previousLength = lexer.Length;
        }
    }

    private static void CheckWord(ref SqlLexer lexer, ref PinReasons pins, ref QueryTraits traits, ReadOnlySpan<byte> previous, bool declare)
    {
        var word = lexer.Text;
        if (SqlLexer.ContainsIgnoreCase(word, "advisory_unlock_all"u8))
        {
            traits |= QueryTraits.AdvisoryUnlockAll;
            return;
        }

        if (lexer.Is("set_config"u8) && !IsLocalSetConfig(lexer))
        {
            // set_config(name, value, false) is a SET that FastPool does not parse: the client keeps its server, so the
            // setting stays its own instead of reaching the next client. A local one (true) ends with the transaction.
            pins |= PinReasons.Untracked;
            return;
        }

        // pg_advisory_lock, pg_advisory_lock_shared, pg_try_advisory_lock...: session-level locks. The
        // transaction-level ones are named *_advisory_xact_lock and end with the transaction.
        if (SqlLexer.ContainsIgnoreCase(word, "advisory_lock"u8))
        {
            pins |= PinReasons.AdvisoryLocks;
        }
        else if (lexer.Is("temp"u8) || lexer.Is("temporary"u8))
        {
            // CREATE [GLOBAL|LOCAL] TEMP ..., CREATE OR REPLACE TEMP VIEW, SELECT ... INTO TEMP.
            if (SqlLexer.EqualsIgnoreCase(previous, "create"u8) || SqlLexer.EqualsIgnoreCase(previous, "global"u8)
                || SqlLexer.EqualsIgnoreCase(previous, "local"u8) || SqlLexer.EqualsIgnoreCase(previous, "into"u8)
                || SqlLexer.EqualsIgnoreCase(previous, "replace"u8))
            {
                pins |= PinReasons.TempTables;
            }
        }
        else if (word.Length >= 7 && SqlLexer.EqualsIgnoreCase(word[..7], "pg_temp"u8) && (word.Length == 7 || word[7] == (byte)'_')
                 && (SqlLexer.EqualsIgnoreCase(previous, "table"u8) || SqlLexer.EqualsIgnoreCase(previous, "view"u8)
                     || SqlLexer.EqualsIgnoreCase(previous, "sequence"u8) || SqlLexer.EqualsIgnoreCase(previous, "exists"u8)))
        {
            // CREATE TABLE pg_temp.name: a temporary table named by the session's temporary schema (CREATE TABLE).
            pins |= PinReasons.TempTables;
        }
        else if (declare && lexer.Is("hold"u8) && SqlLexer.EqualsIgnoreCase(previous, "with"u8))
        {
            pins |= PinReasons.HoldCursors;
        }
    }

    /// <summary>
    /// The session-level SETs and RESETs in a text <see cref="Classify"/> reported <see cref="QueryTraits.Setting"/>
    /// or <see cref="QueryTraits.ResetAll"/> for, in order.
    /// </summary>
    /// <summary>
    /// The one tracked parameter RESET ALL leaves alone (PostgreSQL marks role, like session_authorization, as not
    /// reset by RESET ALL); SET SESSION AUTHORIZATION DEFAULT and DISCARD ALL do reset it.
    /// </summary>
    public const string RoleSetting = "role";

    public static void ReadSettingChanges(ReadOnlySpan<byte> sql, List<SettingChange> changes)
    {
        var lexer = new SqlLexer(sql);
        while (true)
        {
            var token = lexer.Next();
            if (token == SqlToken.End)
            {
                return;
            }

            if (token == SqlToken.Semicolon)
            {
                continue;
            }

            int start = lexer.Start;
            if (token == SqlToken.Word && ReadTransactionControl(ref lexer, changes))
            {
                continue;
            }

            bool set = token == SqlToken.Word && lexer.Is("set"u8);
            bool reset = token == SqlToken.Word && lexer.Is("reset"u8);
            bool discard = token == SqlToken.Word && lexer.Is("discard"u8);
            if (!set && !reset && !discard)
            {
                if (token != SqlToken.Semicolon)
                {
                    lexer.SkipStatement();
                }

                continue;
            }

            var next = lexer.Next();
            if (discard || (reset && next == SqlToken.Word && lexer.Is("all"u8)))
            {
                if (!discard || (next == SqlToken.Word && lexer.Is("all"u8)))
                {
                    changes.Add(new SettingChange(null, null));
                    if (discard)
                    {
                        // DISCARD ALL includes SET SESSION AUTHORIZATION DEFAULT, which RESET ALL does not (role below).
                        changes.Add(new SettingChange(RoleSetting, null));
                    }
                }

                lexer.SkipStatement();
                continue;
            }

            if (next == SqlToken.Word && lexer.Is("session"u8))
            {
                next = lexer.Next();
                if (next == SqlToken.Word && lexer.Is("authorization"u8))
                {
                    // SET SESSION AUTHORIZATION DEFAULT / RESET SESSION AUTHORIZATION: the role goes back too (PostgreSQL
                    // docs, SET SESSION AUTHORIZATION). Any other authorization pins the client instead (Classify).
                    if (reset || (lexer.Next() == SqlToken.Word && lexer.Is("default"u8)))
                    {
                        changes.Add(new SettingChange(RoleSetting, null));
                    }

                    lexer.SkipStatement();
                    continue;
                }

                if (reset)
                {
                    lexer.SkipStatement();
                    continue;
                }
            }
            else if (set && next == SqlToken.Word && (lexer.Is("local"u8) || lexer.Is("transaction"u8) || lexer.Is("constraints"u8)))
            {
                lexer.SkipStatement();
                continue;
            }

            string? name = ReadName(ref lexer, next);
            int end = SkipToEnd(ref lexer);
            if (name is not null)
            {
                // SET ... TO DEFAULT is RESET (PostgreSQL docs, SET): back to the session's default, which is the value
                // the client's startup packet gave, not the server's.
                bool toDefault = set && EndsWithDefault(sql[start..end]);
                changes.Add(new SettingChange(name, set && !toDefault ? System.Text.Encoding.UTF8.GetString(sql[start..end]).TrimEnd() : null));
            }
        }
    }

    /// <summary>
    /// SAVEPOINT, RELEASE, ROLLBACK [TO], ABORT, COMMIT/END AND CHAIN at the lexer's word, added as events (PostgreSQL
    /// docs: SAVEPOINT, RELEASE SAVEPOINT, ROLLBACK TO SAVEPOINT, COMMIT); true when the statement was one (it is then
    /// consumed).
    /// </summary>
    private static bool ReadTransactionControl(ref SqlLexer lexer, List<SettingChange> changes)
    {
        if (lexer.Is("savepoint"u8) || lexer.Is("release"u8))
        {
            bool release = lexer.Is("release"u8);
            var token = lexer.Next();
            if (release && token == SqlToken.Word && lexer.Is("savepoint"u8))
            {
                token = lexer.Next();
            }

            changes.Add(new SettingChange(ReadIdentifier(ref lexer, token), null, release ? SessionEvent.Release : SessionEvent.Savepoint));
        }
        else if (lexer.Is("rollback"u8) || lexer.Is("abort"u8))
        {
            if (RollsBackTo(ref lexer))
            {
                var token = lexer.Next();
                if (token == SqlToken.Word && lexer.Is("savepoint"u8))
                {
                    token = lexer.Next();
                }

                changes.Add(new SettingChange(ReadIdentifier(ref lexer, token), null, SessionEvent.RollbackTo));
            }
            else
            {
                changes.Add(new SettingChange(null, null, SessionEvent.Rollback));
            }
        }
        else if (lexer.Is("commit"u8) || lexer.Is("end"u8))
        {
            if (Chains(ref lexer))
            {
                changes.Add(new SettingChange(null, null, SessionEvent.CommitChain));
            }

            return true;
        }
        else
        {
            return false;
        }

        SkipRest(ref lexer);
        return true;
    }

    /// <summary>Skips the rest of the statement the lexer is in; nothing when it stands on the statement's ';' already.</summary>
    private static void SkipRest(ref SqlLexer lexer)
    {
        if (lexer.Length == 0 || lexer.First != ';')
        {
            lexer.SkipStatement();
        }
    }

    /// <summary>A savepoint name: folded to lower case unless quoted (PostgreSQL docs 4.1.1); null when there is none.</summary>
    private static string? ReadIdentifier(ref SqlLexer lexer, SqlToken token)
    {
        var text = lexer.Text;
        return token switch
        {
            SqlToken.Word => System.Text.Encoding.UTF8.GetString(text).ToLowerInvariant(),
            SqlToken.Quoted when text.Length >= 2 && text[0] == '"' => System.Text.Encoding.UTF8.GetString(text[1..^1]).Replace("\"\"", "\"", StringComparison.Ordinal),
            _ => null,
        };
    }

    /// <summary>
    /// Whether a SET statement's value is the keyword DEFAULT: its last token. DEFAULT is reserved, so it cannot be a
    /// bare element of a value list, and a quoted 'default' is a string.
    /// </summary>
    private static bool EndsWithDefault(ReadOnlySpan<byte> statement)
    {
        var lexer = new SqlLexer(statement);
        bool lastIsDefault = false;
        for (var token = lexer.Next(); token is not (SqlToken.End or SqlToken.Semicolon); token = lexer.Next())
        {
            lastIsDefault = token == SqlToken.Word && lexer.Is("default"u8);
        }

        return lastIsDefault;
    }

    /// <summary>The parameter a SET/RESET names, lower case; the lexer is left on its last word.</summary>
    private static string? ReadName(ref SqlLexer lexer, SqlToken token)
    {
        if (token == SqlToken.Word)
        {
            if (lexer.Is("time"u8))
            {
                lexer.Next();
                return "timezone";
            }

            if (lexer.Is("names"u8))
            {
                return "client_encoding";
            }

            if (lexer.Is("schema"u8))
            {
                return "search_path";
            }

            if (lexer.Is("xml"u8))
            {
                lexer.Next();
                return "xmloption";
            }
        }

        // name or "name", possibly dotted (custom.option); GUC names are case-insensitive.
        var builder = new System.Text.StringBuilder();
        while (token is SqlToken.Word or SqlToken.Quoted)
        {
            var text = lexer.Text;
            if (token == SqlToken.Quoted)
            {
                if (text.Length < 2 || text[0] != '"')
                {
                    return null;
                }

                text = text[1..^1];
            }

            builder.Append(System.Text.Encoding.Latin1.GetString(text).ToLowerInvariant());
            int after = lexer.Position;
            if (lexer.Next() != SqlToken.Symbol || lexer.First != '.' || lexer.Start != after)
            {
                break;
            }

            builder.Append('.');
            token = lexer.Next();
        }

        return builder.Length > 0 ? builder.ToString() : null;
    }

    /// <summary>
    /// Skips to the end of the statement; returns the offset just after its last token, so a trailing comment
    /// (which would swallow whatever FastPool appends after it) is left out.
    /// </summary>
    private static int SkipToEnd(ref SqlLexer lexer)
    {
        if (lexer.Length > 0 && lexer.First == ';')
        {
            return lexer.Start;
        }

        int end = lexer.Start + lexer.Length;
        while (true)
        {
            if (lexer.Next() is SqlToken.Semicolon or SqlToken.End)
            {
                return end;
            }

            end = lexer.Start + lexer.Length;
        }
    }
}
