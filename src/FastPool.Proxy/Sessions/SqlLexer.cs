namespace FastPool.Proxy.Sessions;

internal enum SqlToken : byte
{
    End,

    /// <summary>A keyword or unquoted identifier (letters, digits, '_', '$'), possibly dotted parts separately.</summary>
    Word,

    /// <summary>A quoted identifier, string literal or dollar-quoted string.</summary>
    Quoted,

    /// <summary>';' outside quotes and comments: ends a statement.</summary>
    Semicolon,

    /// <summary>Any other character.</summary>
    Symbol,
}

/// <summary>
/// Just enough of PostgreSQL's lexical rules (PostgreSQL docs 4.1 "Lexical Structure") to find statement
/// boundaries and keywords in query text without being fooled by quotes and comments: '...' (with '' and, in
/// E'...', backslash escapes), "...", $tag$...$tag$, -- and nested /* */ comments. Works on the bytes in place;
/// allocates nothing. Keywords are ASCII, so any client encoding that is an ASCII superset works.
/// </summary>
internal ref struct SqlLexer
{
    private readonly ReadOnlySpan<byte> _sql;
    private int _pos;

    public SqlLexer(ReadOnlySpan<byte> sql)
    {
        _sql = sql;
        _pos = 0;
        Start = 0;
        Length = 0;
    }

    /// <summary>Offset of the last token.</summary>
    public int Start { get; private set; }

    public int Length { get; private set; }

    public readonly int Position => _pos;

    public readonly ReadOnlySpan<byte> Text => _sql.Slice(Start, Length);

    public readonly ReadOnlySpan<byte> Slice(int start, int length) => _sql.Slice(start, length);

    /// <summary>True when the last token is the word <paramref name="lowerAscii"/>, ignoring ASCII case.</summary>
    public readonly bool Is(ReadOnlySpan<byte> lowerAscii) => EqualsIgnoreCase(Text, lowerAscii);

    /// <summary>The first character of the last token (for symbols).</summary>
    public readonly byte First => Length > 0 ? _sql[Start] : (byte)0;

    public SqlToken Next()
    {
        SkipSpaceAndComments();
        Start = _pos;
        if (_pos >= _sql.Length)
        {
            Length = 0;
            return SqlToken.End;
        }

        byte c = _sql[_pos];
        if (c == ';')
        {
            _pos++;
            Length = 1;
            return SqlToken.Semicolon;
        }

        if (c == '\'')
        {
            bool escapes = _pos > 0 && (_sql[_pos - 1] | 0x20) == 'e' && (_pos < 2 || !IsWordChar(_sql[_pos - 2]));
            SkipQuoted((byte)'\'', escapes);
            return Finish(SqlToken.Quoted);
        }

        if (c == '"')
        {
            SkipQuoted((byte)'"', escapes: false);
            return Finish(SqlToken.Quoted);
        }

        if (c == '$' && TrySkipDollarQuoted())
        {
            return Finish(SqlToken.Quoted);
        }

        if (IsWordStart(c))
        {
            _pos++;
            while (_pos < _sql.Length && IsWordChar(_sql[_pos]))
            {
                _pos++;
            }

            // E'...': the word is the string's prefix, not a word of its own.
            if (_pos - Start == 1 && (c | 0x20) == 'e' && _pos < _sql.Length && _sql[_pos] == '\'')
            {
                SkipQuoted((byte)'\'', escapes: true);
                return Finish(SqlToken.Quoted);
            }

            return Finish(SqlToken.Word);
        }

        _pos++;
        return Finish(SqlToken.Symbol);
    }

    /// <summary>Skips to just after the end of the current statement (its ';' or the end of the text).</summary>
    public void SkipStatement()
    {
        SqlToken token;
        do
        {
            token = Next();
        }
        while (token is not (SqlToken.Semicolon or SqlToken.End));
    }

    public static bool EqualsIgnoreCase(ReadOnlySpan<byte> text, ReadOnlySpan<byte> lowerAscii)
    {
        if (text.Length != lowerAscii.Length)
        {
            return false;
        }

        for (int i = 0; i < text.Length; i++)
        {
            byte b = text[i];
            if (b is >= (byte)'A' and <= (byte)'Z')
            {
                b |= 0x20;
            }

            if (b != lowerAscii[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True when <paramref name="text"/> contains <paramref name="lowerAscii"/>, ignoring ASCII case.</summary>
    public static bool ContainsIgnoreCase(ReadOnlySpan<byte> text, ReadOnlySpan<byte> lowerAscii)
    {
        for (int i = 0; i + lowerAscii.Length <= text.Length; i++)
        {
            if (EqualsIgnoreCase(text.Slice(i, lowerAscii.Length), lowerAscii))
            {
                return true;
            }
        }

        return false;
    }

    private SqlToken Finish(SqlToken token)
    {
        Length = _pos - Start;
        return token;
    }

    private static bool IsWordStart(byte c) => (c | 0x20) is >= (byte)'a' and <= (byte)'z' || c == '_' || c >= 0x80;

    private static bool IsWordChar(byte c) => IsWordStart(c) || c is >= (byte)'0' and <= (byte)'9' || c == '$';

    private void SkipSpaceAndComments()
    {
        while (_pos < _sql.Length)
        {
            byte c = _sql[_pos];
            if (c is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\f' or (byte)'\v')
            {
                _pos++;
            }
            else if (c == '-' && _pos + 1 < _sql.Length && _sql[_pos + 1] == '-')
            {
                while (_pos < _sql.Length && _sql[_pos] != '\n')
                {
                    _pos++;
                }
            }
            else if (c == '/' && _pos + 1 < _sql.Length && _sql[_pos + 1] == '*')
            {
                // C-style comments nest in PostgreSQL (4.1.5).
                int depth = 0;
                while (_pos < _sql.Length)
                {
                    if (_sql[_pos] == '/' && _pos + 1 < _sql.Length && _sql[_pos + 1] == '*')
                    {
                        depth++;
                        _pos += 2;
                    }
                    else if (_sql[_pos] == '*' && _pos + 1 < _sql.Length && _sql[_pos + 1] == '/')
                    {
                        _pos += 2;
                        if (--depth == 0)
                        {
                            break;
                        }
                    }
                    else
                    {
                        _pos++;
                    }
                }
            }
            else
            {
                return;
            }
        }
    }

    private void SkipQuoted(byte quote, bool escapes)
    {
        _pos++;
        while (_pos < _sql.Length)
        {
            byte c = _sql[_pos++];
            if (escapes && c == '\\')
            {
                _pos++;
            }
            else if (c == quote)
            {
                // A doubled quote is the quote character itself.
                if (_pos < _sql.Length && _sql[_pos] == quote)
                {
                    _pos++;
                    continue;
                }

                return;
            }
        }

        _pos = _sql.Length;
    }

    /// <summary>$tag$ ... $tag$ (4.1.2.4); false (nothing consumed) when the '$' does not open one, e.g. $1.</summary>
    private bool TrySkipDollarQuoted()
    {
        int tagEnd = _pos + 1;
        if (tagEnd < _sql.Length && _sql[tagEnd] is >= (byte)'0' and <= (byte)'9')
        {
            return false;
        }

        while (tagEnd < _sql.Length && _sql[tagEnd] != '$')
        {
            if (!IsWordChar(_sql[tagEnd]) || _sql[tagEnd] == '$')
            {
                return false;
            }

            tagEnd++;
        }

        if (tagEnd >= _sql.Length)
        {
            return false;
        }

        var tag = _sql.Slice(_pos, tagEnd - _pos + 1);
        int close = _sql.Slice(tagEnd + 1).IndexOf(tag);
        _pos = close < 0 ? _sql.Length : tagEnd + 1 + close + tag.Length;
        return true;
    }
}
