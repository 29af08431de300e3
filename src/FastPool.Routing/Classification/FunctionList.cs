using System.Text;
using System.Text.RegularExpressions;

namespace FastPool.Routing.Classification;

/// <summary>
/// Pgpool-II's write_function_list / read_only_function_list: regular expressions, each anchored to match a whole
/// function name (Pgpool-II adds <c>^</c> and <c>$</c>), case-insensitive. A name is what the statement calls, with
/// or without its schema: <c>public.f(</c> is tested as <c>public.f</c> and as <c>f</c>.
/// </summary>
/// <remarks>
/// Most entries are plain names: those are kept as bytes, grouped by length, and compared without allocating or
/// decoding. Only entries with regex syntax go into one compiled alternation, which a call tests against the
/// name decoded onto the stack, so a match allocates nothing either.
/// </remarks>
public sealed class FunctionList
{
    // Pathological patterns must not stall a session's pump; a timeout counts as "cannot tell" (see Match).
    private static readonly TimeSpan s_timeout = TimeSpan.FromMilliseconds(100);

    // Longer names (only possible quoted, past NAMEDATALEN) are not decoded for the regex: "cannot tell".
    private const int MaxRegexName = 256;

    private readonly byte[][][] _byLength;
    private readonly Regex? _pattern;

    public FunctionList(IEnumerable<string> entries)
    {
        var lists = new List<byte[]>[64];
        var patterns = new List<string>();
        foreach (var raw in entries)
        {
            var entry = raw.Trim();
            if (entry.Length == 0)
            {
                continue;
            }

            Count++;
            if (IsPlainName(entry))
            {
                // A plain (possibly schema-qualified) name: matched on the bytes, the name after the last dot.
                var name = entry[(entry.LastIndexOf('.') + 1)..];
                if (name.Length > 0 && name.Length < lists.Length)
                {
                    (lists[name.Length] ??= []).Add(Encoding.UTF8.GetBytes(name.ToLowerInvariant()));
                    continue;
                }
            }

            // Checked one by one, so the error names the entry that is wrong.
            _ = new Regex(entry, RegexOptions.CultureInvariant);
            patterns.Add("(?:" + entry + ")");
        }

        _byLength = lists.Select(l => l?.ToArray() ?? []).ToArray();
        if (patterns.Count > 0)
        {
            // One alternation, anchored as a whole: one match per call however many entries there are. Compiled where
            // the runtime can compile (JIT); native AOT interprets the same pattern, with no reflection either way.
            _pattern = new Regex(
                "^(?:" + string.Join('|', patterns) + ")$",
                RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Compiled,
                s_timeout);
        }
    }

    public static FunctionList Empty { get; } = new([]);

    /// <summary>The number of entries (plain names and patterns).</summary>
    public int Count { get; }

    /// <summary>Whether <paramref name="name"/> is in the list; a pattern that times out counts as a match.</summary>
    public bool Contains(ReadOnlySpan<byte> name) => Match(name, default) != FunctionMatch.No;

    /// <summary>
    /// Whether the function called as <paramref name="qualified"/> (the text from its schema to its name; empty when
    /// unqualified) with the bare <paramref name="name"/> is in the list.
    /// </summary>
    public FunctionMatch Match(ReadOnlySpan<byte> name, ReadOnlySpan<byte> qualified)
    {
        if ((uint)name.Length < (uint)_byLength.Length)
        {
            foreach (var candidate in _byLength[name.Length])
            {
                if (Ascii.EqualsIgnoreCase(candidate, name))
                {
                    return FunctionMatch.Yes;
                }
            }
        }

        if (_pattern is null)
        {
            return FunctionMatch.No;
        }

        var bare = MatchPattern(name);
        if (bare != FunctionMatch.No || qualified.IsEmpty)
        {
            return bare;
        }

        return MatchPattern(qualified);
    }

    private FunctionMatch MatchPattern(ReadOnlySpan<byte> name)
    {
        if (name.Length > MaxRegexName)
        {
            return FunctionMatch.Unknown;
        }

        Span<char> chars = stackalloc char[MaxRegexName];
        if (!Encoding.UTF8.TryGetChars(name, chars, out int written))
        {
            return FunctionMatch.Unknown;
        }

        try
        {
            return _pattern!.IsMatch(chars[..written]) ? FunctionMatch.Yes : FunctionMatch.No;
        }
        catch (RegexMatchTimeoutException)
        {
            return FunctionMatch.Unknown;
        }
    }

    /// <summary>Letters, digits, '_', '$' and dots: nothing a regular expression would read differently.</summary>
    private static bool IsPlainName(string entry)
    {
        foreach (char c in entry)
        {
            if (!(char.IsLetterOrDigit(c) || c is '_' or '$' or '.'))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>The outcome of looking a function up in a <see cref="FunctionList"/>.</summary>
public enum FunctionMatch : byte
{
    No,
    Yes,

    /// <summary>A pattern could not decide (timed out, or the name is too long): callers take the safe side.</summary>
    Unknown,
}
