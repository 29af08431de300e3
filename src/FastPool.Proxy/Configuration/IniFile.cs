namespace FastPool.Proxy.Configuration;

/// <summary>One <c>key = value</c> line, with the section it fell under and where it was written.</summary>
/// <param name="Section">The current section name as written (null before the first section header).</param>
/// <param name="Key">The key as written (double quotes removed from a quoted key); callers decide on case.</param>
/// <param name="Value">Everything after '=', trimmed; ';' and '#' are not special inside a value.</param>
/// <param name="File">The file as named in messages.</param>
/// <param name="Line">1-based line number in <paramref name="File"/>.</param>
/// <param name="Directory">Directory relative paths written in this file are resolved against.</param>
internal sealed record IniEntry(string? Section, string Key, string Value, string File, int Line, string Directory)
{
    public string Origin => $"{File}:{Line}";
}

/// <summary>One <c>[section]</c> header, in file order.</summary>
internal sealed record IniSectionHeader(string Name, string File, int Line);

/// <summary>
/// Reads PgBouncer's ini dialect: <c>[section]</c> headers, <c>key = value</c> lines, whole-line comments
/// starting with ';' or '#', and <c>%include path</c>. As in PgBouncer, the current section carries across
/// an include in both directions, so an included file may continue the including file's section and the
/// including file continues in whatever section the included file ended in.
/// </summary>
internal sealed class IniFile
{
    /// <summary>PgBouncer's include nesting limit (MAX_INCLUDE in libusual).</summary>
    public const int MaxIncludeDepth = 10;

    private readonly List<IniEntry> _entries = [];
    private readonly List<IniSectionHeader> _sections = [];
    private readonly List<ConfigDiagnostic> _errors = [];
    private readonly List<string> _includeStack = [];
    private string? _currentSection;

    private IniFile()
    {
    }

    public IReadOnlyList<IniEntry> Entries => _entries;

    public IReadOnlyList<IniSectionHeader> Sections => _sections;

    public IReadOnlyList<ConfigDiagnostic> Errors => _errors;

    /// <summary>Reads <paramref name="path"/> and everything it includes; a missing file is reported in <see cref="Errors"/>.</summary>
    public static IniFile Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var ini = new IniFile();
        var fullPath = Path.GetFullPath(path);
        if (!TryReadFile(fullPath, out var text, out var error))
        {
            ini._errors.Add(new ConfigDiagnostic(path, 0, null, $"cannot read config file \"{path}\": {error}"));
            return ini;
        }

        ini.ParseFile(text, path, fullPath, 0);
        return ini;
    }

    /// <summary>
    /// Parses <paramref name="text"/> as if it were the file <paramref name="fileName"/> in
    /// <paramref name="baseDirectory"/>; includes are read from disk relative to that directory.
    /// </summary>
    public static IniFile Parse(string text, string fileName, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(baseDirectory);
        var ini = new IniFile();
        var fullPath = Path.GetFullPath(Path.Combine(baseDirectory, fileName));
        ini.ParseFile(text, fileName, fullPath, 0);
        return ini;
    }

    internal static bool TryReadFile(string fullPath, out string text, out string error)
    {
        try
        {
            text = File.ReadAllText(fullPath);
            error = "";
            return true;
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            error = "no such file";
        }
        catch (UnauthorizedAccessException)
        {
            error = System.IO.Directory.Exists(fullPath) ? "is a directory" : "permission denied";
        }
        catch (IOException ex)
        {
            error = ex.Message;
        }

        text = "";
        return false;
    }

    private void ParseFile(string text, string displayName, string fullPath, int depth)
    {
        _includeStack.Add(fullPath);
        var directory = Path.GetDirectoryName(fullPath) ?? "/";
        var lineNumber = 0;
        var start = 0;
        if (text.Length > 0 && text[0] == '\uFEFF')
        {
            start = 1;
        }

        while (start <= text.Length)
        {
            var end = text.IndexOf('\n', start);
            if (end < 0)
            {
                end = text.Length;
            }

            lineNumber++;
            ParseLine(text.AsSpan(start, end - start), displayName, lineNumber, directory, depth);
            start = end + 1;
        }

        _includeStack.RemoveAt(_includeStack.Count - 1);
    }

    private void ParseLine(ReadOnlySpan<char> raw, string file, int line, string directory, int depth)
    {
        var text = raw.Trim();
        if (text.IsEmpty || text[0] is ';' or '#')
        {
            return;
        }

        if (text.StartsWith("%include", StringComparison.Ordinal) && (text.Length == 8 || char.IsWhiteSpace(text[8])))
        {
            Include(text[8..].Trim().ToString(), file, line, directory, depth);
            return;
        }

        if (text[0] == '[')
        {
            ParseSectionHeader(text, file, line);
            return;
        }

        ParseKeyValue(text, file, line, directory);
    }

    private void ParseSectionHeader(ReadOnlySpan<char> text, string file, int line)
    {
        var close = text.IndexOf(']');
        if (close < 0)
        {
            Error(file, line, "syntax error: section header is missing ']'");
            return;
        }

        var rest = text[(close + 1)..].TrimStart();
        if (!rest.IsEmpty && rest[0] is not (';' or '#'))
        {
            Error(file, line, $"syntax error: unexpected text \"{rest}\" after section header");
            return;
        }

        var name = text[1..close].Trim().ToString();
        if (name.Length == 0)
        {
            Error(file, line, "syntax error: empty section name");
            return;
        }

        _currentSection = name;
        _sections.Add(new IniSectionHeader(name, file, line));
    }

    private void ParseKeyValue(ReadOnlySpan<char> text, string file, int line, string directory)
    {
        string key;
        ReadOnlySpan<char> rest;
        if (text[0] == '"')
        {
            // Database and user names outside [_0-9A-Za-z] are written as SQL quoted identifiers.
            if (!TryReadQuoted(text, out key, out var consumed))
            {
                Error(file, line, "syntax error: unterminated quoted name");
                return;
            }

            rest = text[consumed..].TrimStart();
        }
        else
        {
            var equals = text.IndexOf('=');
            if (equals < 0)
            {
                Error(file, line, $"syntax error: expected \"key = value\", \"[section]\" or \"%include file\", got \"{text}\"");
                return;
            }

            var keySpan = text[..equals].TrimEnd();
            if (keySpan.IndexOfAny(' ', '\t') >= 0)
            {
                Error(file, line, $"syntax error: key \"{keySpan}\" contains whitespace");
                return;
            }

            key = keySpan.ToString();
            rest = text[equals..];
        }

        if (rest.IsEmpty || rest[0] != '=')
        {
            Error(file, line, $"syntax error: expected '=' after \"{key}\"");
            return;
        }

        if (key.Length == 0)
        {
            Error(file, line, "syntax error: missing key before '='");
            return;
        }

        var value = rest[1..].Trim().ToString();
        _entries.Add(new IniEntry(_currentSection, key, value, file, line, directory));
    }

    private static bool TryReadQuoted(ReadOnlySpan<char> text, out string value, out int consumed)
    {
        var builder = new System.Text.StringBuilder();
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
                consumed = i + 1;
                return true;
            }

            builder.Append(text[i]);
            i++;
        }

        value = "";
        consumed = 0;
        return false;
    }

    private void Include(string target, string file, int line, string directory, int depth)
    {
        if (target.Length == 0)
        {
            Error(file, line, "%include needs a file name");
            return;
        }

        if (depth + 1 > MaxIncludeDepth)
        {
            Error(file, line, $"%include nesting is deeper than {MaxIncludeDepth} levels");
            return;
        }

        // PgBouncer resolves against the working directory; resolving against the including file
        // makes a config directory relocatable and gives the same result whatever directory we start in.
        var fullPath = Path.GetFullPath(Path.IsPathRooted(target) ? target : Path.Combine(directory, target));
        if (_includeStack.Contains(fullPath, StringComparer.Ordinal))
        {
            var cycle = string.Join(" -> ", _includeStack.SkipWhile(p => !string.Equals(p, fullPath, StringComparison.Ordinal)).Append(fullPath));
            Error(file, line, $"%include cycle: {cycle}");
            return;
        }

        if (!TryReadFile(fullPath, out var text, out var error))
        {
            Error(file, line, $"cannot read included file \"{fullPath}\": {error}");
            return;
        }

        ParseFile(text, fullPath, fullPath, depth + 1);
    }

    private void Error(string file, int line, string message) => _errors.Add(new ConfigDiagnostic(file, line, null, message));
}
