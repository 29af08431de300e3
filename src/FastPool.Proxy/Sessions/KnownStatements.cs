using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// The statement keys (see <see cref="PreparedStatements"/>) that a server of one pool has accepted in a Parse.
/// A client that holds no server and only prepares such statements (Parse, Sync) is answered by FastPool without
/// taking a server: the statement is prepared on a server when the client first uses it. This is what keeps
/// clients that prepare synchronously between transactions from waiting for a server that another client of
/// the same program holds (pgbench -M prepared, which prepares with PQprepare in a thread serving many clients).
/// Bounded: past the limit, new statements simply take a server to be checked.
/// </summary>
internal sealed class KnownStatements
{
    private const int Limit = 10_000;

    private static readonly ConditionalWeakTable<ServerPool, KnownStatements> s_byPool = [];

    private readonly ConcurrentDictionary<ulong, bool> _keys = new();
    private int _count;

    public static KnownStatements For(ServerPool pool) => s_byPool.GetValue(pool, static _ => new KnownStatements());

    public bool Contains(ulong key) => _keys.ContainsKey(key);

    public void Add(ulong key)
    {
        if (Volatile.Read(ref _count) < Limit && !_keys.ContainsKey(key) && _keys.TryAdd(key, true))
        {
            Interlocked.Increment(ref _count);
        }
    }
}
