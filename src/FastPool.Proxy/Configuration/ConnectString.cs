using System.Text;

namespace FastPool.Proxy.Configuration;

/// <summary>
/// The libpq-style <c>key=value key2='quoted value'</c> strings of the [databases] and [users] sections.
/// Inside single quotes both libpq's <c>\'</c> / <c>\\</c> escapes and PgBouncer's doubled <c>''</c> are
/// understood, so strings written for either parse the same. Any other backslash is kept literally because
/// PgBouncer keeps it, and a password containing one must not change meaning on migration.
/// </summary>
internal static class ConnectString
{
    /// <summary>
    /// Splits <paramref name="text"/> into pairs in written order (keys as written; a repeated key appears
    /// twice and the later one wins for the caller). Empty values are rejected, as PgBouncer rejects them.
    /// </summary>
    public static bool TryParse(string text, out List<KeyValuePair<string, string>> pairs, out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        pairs = [];
        error = null;
        var i = 0;
        while (true)
        {
            i = SkipWhitespace(text, i);
            if (i >= text.Length)
            {
                return true;
            }

            var keyStart = i;
            while (i < text.Length && text[i] != '=' && !IsWhitespace(text[i]))
            {
                i++;
            }

            var key = text[keyStart..i];
            if (key.Length == 0)
            {
                error = "missing parameter name before '='";
                return false;
            }

            i = SkipWhitespace(text, i);
            if (i >= text.Length || text[i] != '=')
            {
                error = $"missing '=' after \"{key}\"";
                return false;
            }

            i = SkipWhitespace(text, i + 1);
            if (i >= text.Length)
            {
                error = $"missing value for \"{key}\"";
                return false;
            }

            string value;
            if (text[i] == '\'')
            {
                if (!TryReadQuoted(text, ref i, out value))
                {
                    error = $"unterminated quoted value for \"{key}\"";
                    return false;
                }

                if (i < text.Length && !IsWhitespace(text[i]))
                {
                    error = $"unexpected text after the quoted value of \"{key}\"";
                    return false;
                }
            }
            else
            {
                var valueStart = i;
                while (i < text.Length && !IsWhitespace(text[i]))
                {
                    i++;
                }

                value = text[valueStart..i];
            }

            if (value.Length == 0)
            {
                error = $"empty value for \"{key}\"";
                return false;
            }

            pairs.Add(new KeyValuePair<string, string>(key, value));
        }
    }

    /// <summary><paramref name="i"/> is at the opening quote; on success it is just past the closing one.</summary>
    private static bool TryReadQuoted(string text, ref int i, out string value)
    {
        var builder = new StringBuilder();
        var p = i + 1;
        while (p < text.Length)
        {
            var c = text[p];
            if (c == '\\' && p + 1 < text.Length && text[p + 1] is '\'' or '\\')
            {
                builder.Append(text[p + 1]);
                p += 2;
                continue;
            }

            if (c == '\'')
            {
                if (p + 1 < text.Length && text[p + 1] == '\'')
                {
                    builder.Append('\'');
                    p += 2;
                    continue;
                }

                i = p + 1;
                value = builder.ToString();
                return true;
            }

            builder.Append(c);
            p++;
        }

        value = "";
        return false;
    }

    private static int SkipWhitespace(string text, int i)
    {
        while (i < text.Length && IsWhitespace(text[i]))
        {
            i++;
        }

        return i;
    }

    private static bool IsWhitespace(char c) => c is ' ' or '\t';
}
