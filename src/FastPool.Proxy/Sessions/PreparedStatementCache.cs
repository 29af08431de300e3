namespace FastPool.Proxy.Sessions;

/// <summary>
/// The shared prepared statements one server connection holds, by key (the server-side name is derived from
/// the key, see <see cref="PreparedStatements.WriteServerName"/>), least recently used first out. It outlives the
/// clients that use the connection: that is how identical statements from many clients share one server-side
/// statement. Entries live in one array linked by index, so adding, touching and evicting allocate nothing once
/// the array has grown to max_prepared_statements. Only the session holding the connection touches it (under
/// that session's swap lock).
/// </summary>
internal sealed class PreparedStatementCache
{
    private const int None = -1;

    private readonly Dictionary<ulong, int> _index = [];
    private Entry[] _entries = new Entry[8];
    private int _newest = None;
    private int _oldest = None;
    private int _free = None;
    private int _used;

    public int Count => _index.Count;

    /// <summary>The least recently used key; only valid when <see cref="Count"/> is above zero.</summary>
    public ulong Oldest => _entries[_oldest].Key;

    public bool Contains(ulong key) => _index.ContainsKey(key);

    /// <summary>Marks <paramref name="key"/> as just used; false when the server does not have it.</summary>
    public bool Touch(ulong key)
    {
        if (!_index.TryGetValue(key, out int i))
        {
            return false;
        }

        if (i != _newest)
        {
            Unlink(i);
            LinkNewest(i);
        }

        return true;
    }

    /// <summary>Records that the server has (or is about to have) <paramref name="key"/>, as the newest entry.</summary>
    public void Add(ulong key)
    {
        if (Touch(key))
        {
            return;
        }

        int i;
        if (_free != None)
        {
            i = _free;
            _free = _entries[i].Next;
        }
        else
        {
            if (_used == _entries.Length)
            {
                Array.Resize(ref _entries, _entries.Length * 2);
            }

            i = _used++;
        }

        _entries[i].Key = key;
        LinkNewest(i);
        _index[key] = i;
    }

    public bool Remove(ulong key)
    {
        if (!_index.Remove(key, out int i))
        {
            return false;
        }

        Unlink(i);
        _entries[i].Next = _free;
        _free = i;
        return true;
    }

    /// <summary>The server dropped all its prepared statements (DISCARD ALL, DEALLOCATE ALL).</summary>
    public void Clear()
    {
        _index.Clear();
        _newest = _oldest = _free = None;
        _used = 0;
    }

    private void LinkNewest(int i)
    {
        _entries[i].Prev = None;
        _entries[i].Next = _newest;
        if (_newest != None)
        {
            _entries[_newest].Prev = i;
        }

        _newest = i;
        if (_oldest == None)
        {
            _oldest = i;
        }
    }

    private void Unlink(int i)
    {
        int prev = _entries[i].Prev;
        int next = _entries[i].Next;
        if (prev != None)
        {
            _entries[prev].Next = next;
        }
        else
        {
            _newest = next;
        }

        if (next != None)
        {
            _entries[next].Prev = prev;
        }
        else
        {
            _oldest = prev;
        }
    }

    private struct Entry
    {
        public ulong Key;
        public int Prev;
        public int Next;
    }
}
