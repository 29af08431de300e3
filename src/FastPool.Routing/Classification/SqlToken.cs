namespace FastPool.Routing.Classification;

/// <summary>Lexical token kinds (PostgreSQL docs 4.1 "Lexical Structure").</summary>
public enum SqlTokenKind : byte
{
    /// <summary>No more tokens in the text.</summary>
    End,

    /// <summary>An unquoted identifier or key word (4.1.1); compared case-insensitively.</summary>
    Word,

    /// <summary>A double-quoted identifier (4.1.1), never a key word.</summary>
    QuotedIdentifier,

    /// <summary>A string constant: '...', E'...', B'...', X'...', U&amp;'...' or $tag$...$tag$ (4.1.2).</summary>
    String,

    /// <summary>A numeric constant (4.1.2.6).</summary>
    Number,

    /// <summary>A positional parameter: $1, $2, ... (4.1.4).</summary>
    Parameter,

    /// <summary>A statement separator ';'.</summary>
    Semicolon,

    /// <summary>'('.</summary>
    OpenParen,

    /// <summary>')'.</summary>
    CloseParen,

    /// <summary>',' '.' '[' ']' ':' and operators (4.1.3, 4.1.4).</summary>
    Symbol,
}

/// <summary>One token: its kind and where it is in the text (the bytes are never copied).</summary>
public readonly record struct SqlToken(SqlTokenKind Kind, int Start, int Length);
