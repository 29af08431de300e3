using System.Globalization;

namespace FastPool.Load.Scenarios;

/// <summary>
/// Parses fastpool-load scripts, a small subset of pgbench's format:
/// <list type="bullet">
/// <item><c>\set NAME EXPR</c>: integer arithmetic (+ - * / parentheses), <c>:var</c> and <c>random(lo, hi)</c>.</item>
/// <item>SQL statements, possibly over several lines, each ending with ';' at the end of a line.</item>
/// <item><c>:name</c> in SQL is bound as a bigint parameter (not inside '...' strings; <c>::type</c> casts are left alone).</item>
/// <item><c>--</c> comment lines and blank lines are ignored. Built-in variables: <c>:scale</c>, <c>:client_id</c>.</item>
/// </list>
/// Errors are <see cref="ScriptException"/>s naming the file and line.
/// </summary>
internal static class ScriptParser
{
    public static Script Parse(string name, string text)
    {
        var variables = new List<string> { Script.Scale, Script.ClientId };
        var referenced = new HashSet<string>(StringComparer.Ordinal);
        var assignments = new List<ScriptAssignment>();
        var statements = new List<ScriptStatement>();
        var pending = new System.Text.StringBuilder();
        var pendingLine = 0;

        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var lineNumber = i + 1;
            var line = lines[i].Trim();
            if (pending.Length == 0 && (line.Length == 0 || line.StartsWith("--", StringComparison.Ordinal)))
            {
                continue;
            }

            if (pending.Length == 0 && line.StartsWith('\\'))
            {
                assignments.Add(ParseMeta(name, lineNumber, line, variables, referenced));
                continue;
            }

            if (pending.Length == 0)
            {
                pendingLine = lineNumber;
            }
            else
            {
                pending.Append('\n');
            }

            pending.Append(lines[i].TrimEnd());
            if (line.EndsWith(';'))
            {
                statements.Add(ParseStatement(name, pendingLine, pending.ToString(), variables, referenced));
                pending.Clear();
            }
        }

        if (pending.Length > 0)
        {
            throw new ScriptException(name, pendingLine, "statement does not end with ';'");
        }

        if (statements.Count == 0)
        {
            throw new ScriptException(name, 1, "the script has no SQL statement");
        }

        return new Script(name, variables, assignments, statements, referenced);
    }

    private static ScriptAssignment ParseMeta(string file, int line, string text, List<string> variables, HashSet<string> referenced)
    {
        var parts = text.Split((char[]?)null, 3, StringSplitOptions.RemoveEmptyEntries);
        if (parts[0] != "\\set")
        {
            throw new ScriptException(file, line, $"unknown meta-command '{parts[0]}' (only \\set is supported)");
        }

        if (parts.Length < 3 || !IsIdentifier(parts[1]))
        {
            throw new ScriptException(file, line, "expected \\set NAME EXPRESSION");
        }

        if (parts[1] is Script.Scale or Script.ClientId)
        {
            throw new ScriptException(file, line, $"'{parts[1]}' is built in and cannot be set");
        }

        var expr = new ExprParser(file, line, parts[2], variables, referenced).ParseAll();
        var index = variables.IndexOf(parts[1]);
        if (index < 0)
        {
            index = variables.Count;
            variables.Add(parts[1]);
        }

        return new ScriptAssignment(index, expr);
    }

    private static ScriptStatement ParseStatement(string file, int line, string sql, List<string> variables, HashSet<string> referenced)
    {
        var parts = new List<string>();
        var parameters = new List<int>();
        var start = 0;
        var inString = false;
        for (var i = 0; i < sql.Length; i++)
        {
            var c = sql[i];
            if (c == '\'')
            {
                inString = !inString;
            }
            else if (!inString && c == ':' && i + 1 < sql.Length && sql[i + 1] == ':')
            {
                i++; // a ::type cast
            }
            else if (!inString && c == ':' && i + 1 < sql.Length && IsIdentifierStart(sql[i + 1]))
            {
                var end = i + 1;
                while (end < sql.Length && IsIdentifierPart(sql[end]))
                {
                    end++;
                }

                var name = sql[(i + 1)..end];
                var index = variables.IndexOf(name);
                if (index < 0)
                {
                    throw new ScriptException(file, line, $"undefined variable ':{name}' (define it with \\set before use)");
                }

                referenced.Add(name);
                parts.Add(sql[start..i]);
                parameters.Add(index);
                start = end;
                i = end - 1;
            }
        }

        if (inString)
        {
            throw new ScriptException(file, line, "unterminated string literal");
        }

        parts.Add(sql[start..]);
        return new ScriptStatement(line, [.. parts], [.. parameters]);
    }

    internal static bool IsIdentifier(string s) => s.Length > 0 && IsIdentifierStart(s[0]) && s.All(IsIdentifierPart);

    private static bool IsIdentifierStart(char c) => char.IsAsciiLetter(c) || c == '_';

    private static bool IsIdentifierPart(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    /// <summary>Recursive descent over <c>expr := term (('+'|'-') term)*; term := factor (('*'|'/') factor)*</c>.</summary>
    private sealed class ExprParser(string file, int line, string text, List<string> variables, HashSet<string> referenced)
    {
        private int _pos;

        public Expr ParseAll()
        {
            var e = ParseSum();
            SkipSpace();
            if (_pos != text.Length)
            {
                throw Error($"unexpected '{text[_pos..]}'");
            }

            return e;
        }

        private Expr ParseSum()
        {
            var left = ParseProduct();
            while (TryTake('+') || TryTake('-'))
            {
                var op = text[_pos - 1];
                left = new Expr.Binary(op, left, ParseProduct());
            }

            return left;
        }

        private Expr ParseProduct()
        {
            var left = ParseFactor();
            while (TryTake('*') || TryTake('/'))
            {
                var op = text[_pos - 1];
                left = new Expr.Binary(op, left, ParseFactor());
            }

            return left;
        }

        private Expr ParseFactor()
        {
            SkipSpace();
            if (TryTake('-'))
            {
                return new Expr.Negate(ParseFactor());
            }

            if (TryTake('('))
            {
                var inner = ParseSum();
                Expect(')');
                return inner;
            }

            if (TryTake(':'))
            {
                var name = TakeWhile(char.IsAsciiLetterOrDigit);
                var index = variables.IndexOf(name);
                if (index < 0)
                {
                    throw Error($"undefined variable ':{name}'");
                }

                referenced.Add(name);
                return new Expr.Variable(index);
            }

            if (_pos < text.Length && char.IsAsciiDigit(text[_pos]))
            {
                var digits = TakeWhile(char.IsAsciiDigit);
                return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
                    ? new Expr.Constant(n)
                    : throw Error($"number '{digits}' is too large");
            }

            var word = TakeWhile(char.IsAsciiLetter);
            if (word == "random")
            {
                Expect('(');
                var low = ParseSum();
                Expect(',');
                var high = ParseSum();
                Expect(')');
                return new Expr.UniformRandom(low, high);
            }

            throw Error(word.Length > 0 ? $"unknown function '{word}' (only random(lo, hi))" : "expected a number, :variable, random(lo, hi) or '('");
        }

        private string TakeWhile(Func<char, bool> predicate)
        {
            var start = _pos;
            while (_pos < text.Length && (predicate(text[_pos]) || (text[_pos] == '_' && _pos > start)))
            {
                _pos++;
            }

            return text[start.._pos];
        }

        private bool TryTake(char c)
        {
            SkipSpace();
            if (_pos < text.Length && text[_pos] == c)
            {
                _pos++;
                return true;
            }

            return false;
        }

        private void Expect(char c)
        {
            if (!TryTake(c))
            {
                throw Error($"expected '{c}'");
            }
        }

        private void SkipSpace()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos]))
            {
                _pos++;
            }
        }

        private ScriptException Error(string message) => new(file, line, $"in \\set: {message}");
    }
}

/// <summary>A script the parser (or the server, for SQL syntax) rejected: "FILE:LINE: message".</summary>
internal sealed class ScriptException : Exception
{
    public ScriptException()
    {
    }

    public ScriptException(string message)
        : base(message)
    {
    }

    public ScriptException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ScriptException(string file, int line, string message)
        : base($"{file}:{line.ToString(CultureInfo.InvariantCulture)}: {message}")
    {
    }
}
