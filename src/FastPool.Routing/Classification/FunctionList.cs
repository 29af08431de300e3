using System.Text;

namespace FastPool.Routing.Classification;

/// <summary>
/// A set of function names matched against token bytes without allocating: ASCII case-insensitive, grouped
/// by length so a lookup compares only names of the right length. Schema qualification is ignored (the name
/// after the last dot is what is matched), as in Pgpool-II's function lists.
/// </summary>
public sealed class FunctionList
{
    private readonly byte[][][] _byLength;

    public FunctionList(IEnumerable<string> names)
    {
        var lists = new List<byte[]>[64];
        foreach (var raw in names)
        {
            var name = raw.Trim();
            int dot = name.LastIndexOf('.');
            if (dot >= 0)
            {
                name = name[(dot + 1)..];
            }

            if (name.Length == 0 || name.Length >= lists.Length)
            {
                continue;
            }

            (lists[name.Length] ??= []).Add(Encoding.UTF8.GetBytes(name.ToLowerInvariant()));
            Count++;
        }

        _byLength = lists.Select(l => l?.ToArray() ?? []).ToArray();
    }

    public static FunctionList Empty { get; } = new([]);

    public int Count { get; }

    public bool Contains(ReadOnlySpan<byte> name)
    {
        if ((uint)name.Length >= (uint)_byLength.Length)
        {
            return false;
        }

        foreach (var candidate in _byLength[name.Length])
        {
            if (Ascii.EqualsIgnoreCase(candidate, name))
            {
                return true;
            }
        }

        return false;
    }
}
