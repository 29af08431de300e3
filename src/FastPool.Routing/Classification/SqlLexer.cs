using System.Text;

namespace FastPool.Routing.Classification;

/// <summary>
/// An allocation-free tokenizer over UTF-8 SQL text, following PostgreSQL docs 4.1 "Lexical Structure":
/// it skips whitespace and comments (-- to end of line, nested /* */), and keeps string constants (including
/// E'' escapes, doubled quotes, and dollar quoting), quoted identifiers and numbers whole, so that a key word
/// inside any of them is never mistaken for one. Non-ASCII bytes are identifier characters (4.1.1).
/// Malformed input (an unterminated string or comment) ends the text; the classifier then treats what it has
/// seen conservatively.
/// </summary>
public ref struct SqlLexer
{
    private readonly ReadOnlySpan<byte> _text;
    private int _pos;

    public SqlLexer(ReadOnlySpan<byte> text)
    {
        _text = text;
        _pos = 0;
    }

    /// <summary>True when a comment right at the start of the text contained this hint (Pgpool-II's /*NO LOAD BALANCE*/).</summary>
    public static bool StartsWithHint(ReadOnlySpan<byte> text, ReadOnlySpan<byte> hint)
    {
        int i = 0;
        while (i < text.Length && IsSpace(text[i]))
        {
            i++;
        }

        if (i + 1 >= text.Length || text[i] != '/' || text[i + 1] != '*')
        {
            return false;
        }

        int end = text[(i + 2)..].IndexOf("*/"u8);
        if (end < 0)
        {
            return false;
        }

        var body = text.Slice(i + 2, end).Trim(" \t\r\n"u8);
        return body.Length == hint.Length && Ascii.EqualsIgnoreCase(body, hint);
    }

    public SqlToken Next()
    {
        var t = _text;
        while (true)
        {
            while (_pos < t.Length && IsSpace(t[_pos]))
            {
                _pos++;
            }

            if (_pos >= t.Length)
            {
                return new SqlToken(SqlTokenKind.End, t.Length, 0);
            }

            if (t[_pos] == '-' && _pos + 1 < t.Length && t[_pos + 1] == '-')
            {
                int nl = t[_pos..].IndexOfAny((byte)'\n', (byte)'\r');
                _pos = nl < 0 ? t.Length : _pos + nl;
                continue;
            }

            if (t[_pos] == '/' && _pos + 1 < t.Length && t[_pos + 1] == '*')
            {
                SkipBlockComment();
                continue;
            }

            break;
        }

        int start = _pos;
        byte c = t[_pos];
        switch (c)
        {
            case (byte)';':
                _pos++;
                return new SqlToken(SqlTokenKind.Semicolon, start, 1);
            case (byte)'(':
                _pos++;
                return new SqlToken(SqlTokenKind.OpenParen, start, 1);
            case (byte)')':
                _pos++;
                return new SqlToken(SqlTokenKind.CloseParen, start, 1);
            case (byte)'\'':
                SkipQuoted((byte)'\'', backslashEscapes: false);
                return new SqlToken(SqlTokenKind.String, start, _pos - start);
            case (byte)'"':
                SkipQuoted((byte)'"', backslashEscapes: false);
                return new SqlToken(SqlTokenKind.QuotedIdentifier, start, _pos - start);
            case (byte)'$':
                return Dollar(start);
        }

        // E'...' (escape string), B'...', X'...', N'...' and U&'...' / U&"..." prefixes (4.1.2.2-4.1.2.5).
        if (_pos + 1 < t.Length && t[_pos + 1] == '\'' && (c | 0x20) is (byte)'e' or (byte)'b' or (byte)'x' or (byte)'n')
        {
            _pos++;
            SkipQuoted((byte)'\'', backslashEscapes: (c | 0x20) == 'e');
            return new SqlToken(SqlTokenKind.String, start, _pos - start);
        }

        if ((c | 0x20) == 'u' && _pos + 2 < t.Length && t[_pos + 1] == '&' && t[_pos + 2] is (byte)'\'' or (byte)'"')
        {
            byte quote = t[_pos + 2];
            _pos += 2;
            SkipQuoted(quote, backslashEscapes: false);
            return new SqlToken(quote == '\'' ? SqlTokenKind.String : SqlTokenKind.QuotedIdentifier, start, _pos - start);
        }

        if (IsIdentStart(c))
        {
            _pos++;
            while (_pos < t.Length && IsIdentPart(t[_pos]))
            {
                _pos++;
            }

            return new SqlToken(SqlTokenKind.Word, start, _pos - start);
        }

        if (IsDigit(c) || (c == '.' && _pos + 1 < t.Length && IsDigit(t[_pos + 1])))
        {
            _pos++;
            while (_pos < t.Length && (IsIdentPart(t[_pos]) || t[_pos] == '.'))
            {
                _pos++;
            }

            return new SqlToken(SqlTokenKind.Number, start, _pos - start);
        }

        _pos++;
        return new SqlToken(SqlTokenKind.Symbol, start, 1);
    }

    /// <summary>The text from <paramref name="from"/>, or from where the next token would be read when it is negative.</summary>
    public readonly ReadOnlySpan<byte> Rest(int from) => _text[(from < 0 ? _pos : from)..];

    /// <summary>The bytes of a token.</summary>
    public readonly ReadOnlySpan<byte> TextOf(SqlToken token) => _text.Slice(token.Start, token.Length);

    private SqlToken Dollar(int start)
    {
        var t = _text;

        // $n is a parameter (4.1.4); $tag$ or $$ opens a dollar-quoted string (4.1.2.4).
        int i = _pos + 1;
        if (i < t.Length && IsDigit(t[i]))
        {
            while (i < t.Length && IsDigit(t[i]))
            {
                i++;
            }

            _pos = i;
            return new SqlToken(SqlTokenKind.Parameter, start, i - start);
        }

        while (i < t.Length && IsIdentPart(t[i]) && t[i] != '$')
        {
            i++;
        }

        if (i >= t.Length || t[i] != '$')
        {
            _pos++;
            return new SqlToken(SqlTokenKind.Symbol, start, 1);
        }

        var tag = t.Slice(_pos, i - _pos + 1);
        int close = t[(i + 1)..].IndexOf(tag);
        _pos = close < 0 ? t.Length : i + 1 + close + tag.Length;
        return new SqlToken(SqlTokenKind.String, start, _pos - start);
    }

    private void SkipQuoted(byte quote, bool backslashEscapes)
    {
        var t = _text;
        _pos++;
        while (_pos < t.Length)
        {
            byte b = t[_pos++];
            if (backslashEscapes && b == '\\')
            {
                _pos++;
            }
            else if (b == quote)
            {
                // A doubled quote is the quote character itself, not the end.
                if (_pos < t.Length && t[_pos] == quote)
                {
                    _pos++;
                    continue;
                }

                return;
            }
        }

        _pos = t.Length;
    }

    private void SkipBlockComment()
    {
        // Block comments nest (4.1.5).
        var t = _text;
        int depth = 0;
        while (_pos + 1 < t.Length)
        {
            if (t[_pos] == '/' && t[_pos + 1] == '*')
            {
                depth++;
                _pos += 2;
            }
            else if (t[_pos] == '*' && t[_pos + 1] == '/')
            {
                depth--;
                _pos += 2;
                if (depth == 0)
                {
                    return;
                }
            }
            else
            {
                _pos++;
            }
        }

        _pos = t.Length;
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\f' or (byte)'\v';

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    private static bool IsIdentStart(byte b) => (uint)((b | 0x20) - 'a') <= 'z' - 'a' || b == '_' || b >= 0x80;

    private static bool IsIdentPart(byte b) => IsIdentStart(b) || IsDigit(b) || b == '$';
}
