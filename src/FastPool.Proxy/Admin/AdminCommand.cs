namespace FastPool.Proxy.Admin;

/// <summary>
/// One console command: a verb and its words, as PgBouncer's console reads them. Case-insensitive, trailing
/// semicolons and surrounding blanks ignored, names may be double-quoted; SET keeps its value as written.
/// </summary>
internal sealed record AdminCommand(string Verb, IReadOnlyList<string> Args, string Text)
{
    /// <summary>Null with an error message when the text is not one command.</summary>
    public static AdminCommand? Parse(string sql, out string? error)
    {
        error = null;
        var text = sql.Trim();
        while (text.EndsWith(';'))
        {
            text = text[..^1].TrimEnd();
        }

        if (text.Length == 0)
        {
            return new AdminCommand(string.Empty, [], text);
        }

        if (text.Contains(';', StringComparison.Ordinal) && !text.StartsWith("set ", StringComparison.OrdinalIgnoreCase))
        {
            error = "the admin console runs one command per query";
            return null;
        }

        int space = IndexOfBlank(text);
        string verb = (space < 0 ? text : text[..space]).ToUpperInvariant();
        string rest = space < 0 ? string.Empty : text[space..].Trim();
        if (verb == "SET")
        {
            return ParseSet(rest, text, out error);
        }

        return new AdminCommand(verb, Words(rest), text);
    }

    /// <summary>Blank-separated words; a double-quoted word may hold blanks ("" is a quote), as SQL identifiers do.</summary>
    private static List<string> Words(string rest)
    {
        var words = new List<string>();
        var current = new System.Text.StringBuilder();
        bool quoted = false, inWord = false;
        for (int i = 0; i < rest.Length; i++)
        {
            char c = rest[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < rest.Length && rest[i + 1] == '"')
                {
                    current.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    current.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
            }
            else
            {
                current.Append(c);
                inWord = true;
            }
        }

        if (inWord)
        {
            words.Add(current.ToString());
        }

        return words;
    }

    /// <summary>SET key = value, or SET key TO value; a single-quoted value may contain blanks ('' is a quote).</summary>
    private static AdminCommand? ParseSet(string rest, string text, out string? error)
    {
        error = null;
        int eq = rest.IndexOf('=', StringComparison.Ordinal);
        string key, value;
        if (eq > 0)
        {
            key = rest[..eq].Trim();
            value = rest[(eq + 1)..].Trim();
        }
        else
        {
            int blank = IndexOfBlank(rest);
            var after = blank < 0 ? string.Empty : rest[blank..].TrimStart();
            if (blank < 0 || !after.StartsWith("to ", StringComparison.OrdinalIgnoreCase))
            {
                error = "syntax: SET key = value";
                return null;
            }

            key = rest[..blank];
            value = after[3..].Trim();
        }

        if (value.Length >= 2 && value[0] == '\'' && value[^1] == '\'')
        {
            value = value[1..^1].Replace("''", "'", StringComparison.Ordinal);
        }

        if (key.Length == 0)
        {
            error = "syntax: SET key = value";
            return null;
        }

        return new AdminCommand("SET", [key.ToLowerInvariant(), value], text);
    }

    private static int IndexOfBlank(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsWhiteSpace(s[i]))
            {
                return i;
            }
        }

        return -1;
    }
}
