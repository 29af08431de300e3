using System.Text;
using FastPool.Protocol.Scram;

namespace FastPool.Proxy.Configuration;

/// <summary>
/// Reads PgBouncer's auth_file (userlist.txt): one <c>"username" "secret"</c> pair per line, <c>""</c> for a
/// double quote inside either field, anything after the second field ignored (mkauth.py and pg_shadow dumps
/// write extra columns). Secrets are kept verbatim: plain text, <c>md5...</c> or <c>SCRAM-SHA-256$...</c>.
/// </summary>
internal static class AuthFileParser
{
    /// <summary>
    /// Parses <paramref name="text"/>; malformed lines are reported into <paramref name="errors"/> (naming
    /// <paramref name="fileName"/> and the line) and skipped. A user listed twice keeps the later secret.
    /// </summary>
    public static Dictionary<string, string> Parse(string text, string fileName, List<ConfigDiagnostic> errors)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(errors);
        var users = new Dictionary<string, string>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNumber++;
            var line = rawLine.AsSpan().Trim();
            if (lineNumber == 1 && line.Length > 0 && line[0] == '\uFEFF')
            {
                line = line[1..].TrimStart();
            }

            if (line.IsEmpty || line[0] is ';' or '#')
            {
                continue;
            }

            var error = ParseLine(line, out var user, out var secret);
            if (error is not null)
            {
                errors.Add(new ConfigDiagnostic(fileName, lineNumber, null, error));
                continue;
            }

            if (ScramSecret.LooksLikeSecret(secret) && !ScramSecret.TryParse(secret, out _))
            {
                // Checked here, so a typo surfaces at startup rather than as failed logins; the secret itself is not quoted.
                errors.Add(new ConfigDiagnostic(fileName, lineNumber, null,
                    $"malformed SCRAM secret for user \"{user}\"; accepted: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (base64, as in pg_authid)"));
                continue;
            }

            users[user] = secret;
        }

        return users;
    }

    private static string? ParseLine(ReadOnlySpan<char> line, out string user, out string secret)
    {
        user = "";
        secret = "";
        if (line[0] != '"')
        {
            return "malformed line: expected \"username\" \"secret\"";
        }

        var consumed = ReadQuoted(line, out user);
        if (consumed < 0)
        {
            return "malformed line: unterminated quoted user name";
        }

        if (user.Length == 0)
        {
            return "malformed line: empty user name";
        }

        var rest = line[consumed..];
        var afterName = rest.TrimStart();
        if (afterName.IsEmpty)
        {
            return $"malformed line: missing secret for user \"{user}\"";
        }

        if (afterName.Length == rest.Length || afterName[0] != '"')
        {
            return $"malformed line: expected whitespace and a quoted secret after user \"{user}\"";
        }

        if (ReadQuoted(afterName, out secret) < 0)
        {
            return $"malformed line: unterminated quoted secret for user \"{user}\"";
        }

        return null;
    }

    /// <summary>Reads a "..." field starting at text[0]; returns the characters consumed, or -1 if unterminated.</summary>
    private static int ReadQuoted(ReadOnlySpan<char> text, out string value)
    {
        var builder = new StringBuilder();
        var i = 1;
        while (i < text.Length)
        {
            if (text[i] == '"')
            {
                if (i + 1 < text.Length && text[i + 1] == '"')
                {
                    builder.Append('"');
                    i += 2;
                    continue;
                }

                value = builder.ToString();
                return i + 1;
            }

            builder.Append(text[i]);
            i++;
        }

        value = "";
        return -1;
    }
}
