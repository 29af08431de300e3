using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace FastPool.Proxy.Configuration.Hba;

/// <summary>
/// Reads an auth_hba_file in pg_hba.conf format (PostgreSQL docs 21.1): one rule per line,
/// <c>local DATABASE USER METHOD</c> or <c>host|hostssl|hostnossl|hostgssenc|hostnogssenc DATABASE USER ADDRESS METHOD</c>,
/// ADDRESS as CIDR, as "address mask", or "all"; DATABASE and USER as comma lists of names, "all",
/// "sameuser" (database), "@file"; quoting a keyword makes it a name. '#' starts a comment, a trailing '\'
/// continues the line. Options after the method (name=value) are accepted and ignored.
/// Every line FastPool cannot apply exactly is an error: a rule that silently matched differently would be
/// a hole in access control.
/// </summary>
internal static class HbaParser
{
    public const string AcceptedMethods = "trust, reject, md5, password, scram-sha-256, peer (local only), cert (hostssl only)";
    private const string Key = "auth_hba_file";

    /// <param name="readFile">Reads an @file (path already resolved); null when it cannot be read, with the reason.</param>
    public static HbaRules Parse(string text, string fileName, List<ConfigDiagnostic> errors, Func<string, (string? Text, string? Error)>? readFile = null)
    {
        var rules = new List<HbaRule>();
        var baseDirectory = Path.GetDirectoryName(Path.GetFullPath(fileName)) ?? ".";
        readFile ??= ReadFile;
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int lineNumber = i + 1;
            var line = lines[i].TrimEnd('\r');
            while (line.EndsWith('\\') && i + 1 < lines.Length)
            {
                line = line[..^1] + " " + lines[++i].TrimEnd('\r');
            }

            var context = new LineContext(fileName, lineNumber, baseDirectory, errors, readFile);
            if (!Tokenize(line, out var fields, out var error))
            {
                context.Error(error);
                continue;
            }

            if (fields.Count == 0)
            {
                continue;
            }

            if (ParseRule(fields, context) is { } rule)
            {
                rules.Add(rule);
            }
        }

        return new HbaRules(fileName, rules);
    }

    private static HbaRule? ParseRule(List<List<Token>> fields, LineContext context)
    {
        if (fields[0].Count != 1 || !TryConnectionType(fields[0][0], out var type))
        {
            context.Error($"invalid connection type \"{Describe(fields[0])}\"; accepted: local, host, hostssl, hostnossl, hostgssenc, hostnogssenc");
            return null;
        }

        bool local = type == HbaConnectionType.Local;
        int methodIndex = local ? 3 : 4;
        if (fields.Count <= methodIndex)
        {
            context.Error(local ? "incomplete line: expected local DATABASE USER METHOD" : "incomplete line: expected host DATABASE USER ADDRESS METHOD");
            return null;
        }

        var databases = ParseNames(fields[1], context, isDatabase: true);
        var users = ParseNames(fields[2], context, isDatabase: false);
        HbaAddress? address = null;
        if (!local)
        {
            address = ParseAddress(fields, context, ref methodIndex);
            if (address is null)
            {
                return null;
            }

            if (fields.Count <= methodIndex)
            {
                context.Error("incomplete line: expected a method after the address");
                return null;
            }
        }

        if (databases is null || users is null)
        {
            return null;
        }

        var methodField = fields[methodIndex];
        if (methodField.Count != 1 || !TryMethod(methodField[0], out var method))
        {
            context.Error($"invalid authentication method \"{Describe(methodField)}\"; accepted: {AcceptedMethods}");
            return null;
        }

        if (method == HbaMethod.Peer && !local)
        {
            context.Error("peer authentication is only supported on local sockets");
            return null;
        }

        if (method == HbaMethod.Cert && type != HbaConnectionType.HostSsl)
        {
            context.Error("cert authentication is only supported on hostssl connections");
            return null;
        }

        return new HbaRule(context.Line, type, databases, users, address, method);
    }

    private static HbaNameList? ParseNames(List<Token> field, LineContext context, bool isDatabase)
    {
        bool all = false, sameUser = false, ok = true;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var token in field)
        {
            if (token.Quoted)
            {
                names.Add(token.Text);
                continue;
            }

            switch (token.Text)
            {
                case "all":
                    all = true;
                    continue;
                case "sameuser" when isDatabase:
                    sameUser = true;
                    continue;
                case "replication" when isDatabase:
                    // Only replication connections match it, and FastPool does not serve them.
                    continue;
                case "samerole" or "samegroup" when isDatabase:
                    context.Error($"\"{token.Text}\" is not supported (FastPool does not know role membership)");
                    ok = false;
                    continue;
            }

            if (!isDatabase && token.Text.StartsWith('+'))
            {
                context.Error($"group membership \"{token.Text}\" is not supported (FastPool does not know role membership)");
                ok = false;
            }
            else if (token.Text.StartsWith('@'))
            {
                ok &= ReadNameFile(token.Text[1..], names, context);
            }
            else
            {
                names.Add(token.Text);
            }
        }

        return ok ? new HbaNameList(all, sameUser, names) : null;
    }

    private static bool ReadNameFile(string path, HashSet<string> names, LineContext context)
    {
        var full = Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(context.BaseDirectory, path));
        var (text, error) = context.ReadFile(full);
        if (text is null)
        {
            context.Error($"cannot read \"@{path}\" ({full}): {error}");
            return false;
        }

        foreach (var rawLine in text.Split('\n'))
        {
            if (!Tokenize(rawLine.TrimEnd('\r'), out var fields, out var tokenError))
            {
                context.Error($"in \"@{path}\": {tokenError}");
                return false;
            }

            foreach (var field in fields)
            {
                foreach (var token in field)
                {
                    names.Add(token.Text);
                }
            }
        }

        return true;
    }

    private static HbaAddress? ParseAddress(List<List<Token>> fields, LineContext context, ref int methodIndex)
    {
        var field = fields[3];
        if (field.Count != 1)
        {
            context.Error($"invalid address \"{Describe(field)}\": one address expected");
            return null;
        }

        var token = field[0];
        var text = token.Text;
        if (!token.Quoted && text == "all")
        {
            return HbaAddress.Any;
        }

        if (!token.Quoted && text is "samehost" or "samenet")
        {
            context.Error($"address \"{text}\" is not supported; accepted: all, a CIDR address (10.0.0.0/8), or an address and a mask");
            return null;
        }

        int slash = text.IndexOf('/');
        if (slash >= 0)
        {
            if (IPAddress.TryParse(text[..slash], out var network)
                && int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int prefix)
                && prefix <= HbaAddress.MaxPrefix(network.AddressFamily))
            {
                return new HbaAddress(network, prefix);
            }

            context.Error($"invalid CIDR address \"{text}\"");
            return null;
        }

        if (!IPAddress.TryParse(text, out var address))
        {
            context.Error($"invalid address \"{text}\": host names are not supported; accepted: all, a CIDR address (10.0.0.0/8), or an address and a mask");
            return null;
        }

        // "address mask" form: the mask is the next field, and the method moves one further.
        methodIndex++;
        if (fields.Count < 5 || fields[4].Count != 1 || !IPAddress.TryParse(fields[4][0].Text, out var mask)
            || mask.AddressFamily != address.AddressFamily || !TryPrefixLength(mask, out int maskPrefix))
        {
            context.Error($"address \"{text}\" needs a CIDR suffix or a valid netmask of the same family after it");
            return null;
        }

        return new HbaAddress(address, maskPrefix);
    }

    /// <summary>A netmask must be contiguous ones then zeros, like 255.255.0.0.</summary>
    private static bool TryPrefixLength(IPAddress mask, out int prefix)
    {
        prefix = 0;
        bool zeros = false;
        foreach (byte b in mask.GetAddressBytes())
        {
            for (int bit = 7; bit >= 0; bit--)
            {
                bool one = (b & (1 << bit)) != 0;
                if (one && zeros)
                {
                    return false;
                }

                if (one)
                {
                    prefix++;
                }
                else
                {
                    zeros = true;
                }
            }
        }

        return true;
    }

    private static bool TryConnectionType(Token token, out HbaConnectionType type)
    {
        (bool ok, type) = token.Text switch
        {
            "local" => (true, HbaConnectionType.Local),
            "host" => (true, HbaConnectionType.Host),
            "hostssl" => (true, HbaConnectionType.HostSsl),
            "hostnossl" => (true, HbaConnectionType.HostNoSsl),
            "hostgssenc" => (true, HbaConnectionType.HostGssEnc),
            "hostnogssenc" => (true, HbaConnectionType.HostNoGssEnc),
            _ => (false, default),
        };
        return ok && !token.Quoted;
    }

    private static bool TryMethod(Token token, out HbaMethod method)
    {
        (bool ok, method) = token.Text switch
        {
            "trust" => (true, HbaMethod.Trust),
            "reject" => (true, HbaMethod.Reject),
            "password" => (true, HbaMethod.Password),
            "md5" => (true, HbaMethod.Md5),
            "scram-sha-256" => (true, HbaMethod.ScramSha256),
            "peer" => (true, HbaMethod.Peer),
            "cert" => (true, HbaMethod.Cert),
            _ => (false, default),
        };
        return ok && !token.Quoted;
    }

    /// <summary>
    /// Splits a line into fields; a field is a comma list of tokens (whitespace after a comma is allowed).
    /// A double-quoted token may hold spaces, commas and '#'.
    /// </summary>
    private static bool Tokenize(string line, out List<List<Token>> fields, out string error)
    {
        fields = [];
        error = string.Empty;
        int i = 0;
        while (true)
        {
            while (i < line.Length && char.IsWhiteSpace(line[i]))
            {
                i++;
            }

            if (i >= line.Length || line[i] == '#')
            {
                return true;
            }

            var field = new List<Token>();
            while (true)
            {
                var text = new StringBuilder();
                bool quoted = false;
                while (i < line.Length && !char.IsWhiteSpace(line[i]) && line[i] is not ',' and not '#')
                {
                    if (line[i] == '"')
                    {
                        int close = line.IndexOf('"', i + 1);
                        if (close < 0)
                        {
                            error = "unterminated quoted string";
                            return false;
                        }

                        text.Append(line, i + 1, close - i - 1);
                        quoted = true;
                        i = close + 1;
                        continue;
                    }

                    text.Append(line[i++]);
                }

                if (text.Length == 0 && !quoted)
                {
                    error = "empty entry in a comma-separated list";
                    return false;
                }

                field.Add(new Token(text.ToString(), quoted));
                if (i < line.Length && line[i] == ',')
                {
                    i++;
                    while (i < line.Length && char.IsWhiteSpace(line[i]))
                    {
                        i++;
                    }

                    continue;
                }

                break;
            }

            fields.Add(field);
        }
    }

    private static (string? Text, string? Error) ReadFile(string path)
    {
        try
        {
            return (File.ReadAllText(path), null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, ex.Message);
        }
    }

    private static string Describe(List<Token> field) => string.Join(",", field.Select(t => t.Text));

    private readonly record struct Token(string Text, bool Quoted);

    private sealed record LineContext(string File, int Line, string BaseDirectory, List<ConfigDiagnostic> Errors, Func<string, (string? Text, string? Error)> ReadFile)
    {
        public void Error(string message) => Errors.Add(new ConfigDiagnostic(File, Line, Key, $"auth_hba_file: {message}"));
    }
}
