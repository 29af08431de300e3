using System.Text;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// A session's settings as one string: the reported parameters (names folded to lower case, as PostgreSQL
/// treats them) and the tracked SET statements, each sorted. Transaction pooling compares a client's key with
/// its new server's key before every transaction; equal keys mean no settings query and nothing to learn
/// from the server's parameters, so the common case costs one string comparison instead of a walk over
/// both dictionaries. Keys are rebuilt only when something changed, which in steady state is never.
/// </summary>
internal static class SessionStateKey
{
    // Most clients of a pool have the same settings, so most keys are equal. Equal keys are handed out as one
    // string object, and the comparison before every transaction ends at the reference check instead of walking
    // a few hundred characters. Bounded: clients with unique settings (an application_name per client, say) stop
    // being interned once the table is full, and are compared character by character as before.
    private const int InternLimit = 4096;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> s_interned = new(StringComparer.Ordinal);

    public static string Build(IEnumerable<KeyValuePair<string, string>> reported, IEnumerable<KeyValuePair<string, string>> settings)
    {
        var sb = new StringBuilder(512);
        Append(sb, reported, foldNames: true);
        sb.Append('\u0001');
        Append(sb, settings, foldNames: false);
        var key = sb.ToString();
        if (s_interned.TryGetValue(key, out var shared))
        {
            return shared;
        }

        return s_interned.Count < InternLimit ? s_interned.GetOrAdd(key, key) : key;
    }

    private static void Append(StringBuilder sb, IEnumerable<KeyValuePair<string, string>> pairs, bool foldNames)
    {
        var list = new List<KeyValuePair<string, string>>(pairs.Select(kv => foldNames ? new KeyValuePair<string, string>(kv.Key.ToLowerInvariant(), kv.Value) : kv));
        list.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        foreach (var kv in list)
        {
            // NUL cannot occur in a name or value sent over the protocol (they are C strings, 55.7); the only value
            // holding one is the server side's UnknownSetting marker, which by design never equals a client's value.
            sb.Append(kv.Key).Append('\0').Append(kv.Value).Append('\0');
        }
    }
}
