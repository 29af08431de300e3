using System.Runtime.InteropServices;

namespace FastPool.Cache;

/// <summary>
/// The in-memory result store: whole wire responses (the bytes a server sent for one request, ReadyForQuery
/// included) by key, each remembering the relations it read, so a write to one of them removes it. Bounded by
/// <see cref="CacheLimits.TotalSize"/> with least-recently-used eviction, and by <see cref="CacheLimits.Expire"/>.
/// One lock guards it: a lookup is a hash, a compare and a list splice, far shorter than the send that follows.
/// </summary>
/// <remarks>
/// A result read while a write to its relations was in flight could be older than that write's commit. Every
/// invalidation takes a sequence number; a response is stored only when none of its relations (nor its whole
/// database) was invalidated after its capture began (<see cref="BeginCapture"/>), so a read that raced a commit
/// never outlives it in the cache.
/// <para>
/// Admission: while the store has room every miss may be stored. Once it is nearly full, a miss is stored only when
/// its key was missed before in a recent window (a small bit set of key hashes, cleared as it fills), the "doorkeeper"
/// of TinyLFU (Einziger, Friedman, Manes 2017). A workload of one-off keys, such as pgbench -S over a large table,
/// would otherwise pay a capture, a store and an eviction on every statement and keep none of them long enough to be
/// hit; repeated keys still get in on their second miss.
/// </para>
/// </remarks>
public sealed class ResultCache
{
    // Per entry bookkeeping beyond its key and response (object headers, dictionary slot, index sets), for the budget.
    private const int EntryOverhead = 160;

    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly Dictionary<byte[], Entry> _entries = new(ByteKeyComparer.Instance);
    private readonly Dictionary<byte[], Entry>.AlternateLookup<ReadOnlySpan<byte>> _bySpan;
    private readonly Dictionary<RelationKey, HashSet<Entry>> _byRelation = [];
    private readonly Dictionary<RelationKey, long> _relationSequence = [];
    private readonly Dictionary<string, long> _databaseSequence = new(StringComparer.Ordinal);
    private readonly Dictionary<RelationKey, bool> _safety = [];
    private readonly Dictionary<RelationKey, string[]> _families = [];
    private CacheLimits _limits;
    private Entry? _newest;
    private Entry? _oldest;
    private long _bytes;
    private long _sequence;
    private long _hits;
    private long _misses;
    private long _evictions;
    private long _invalidations;
    private long _stores;
    private long _declined;
    private ulong[]? _doorkeeper;
    private int _doorkeeperSet;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte[]> _prefixes = new(StringComparer.Ordinal);

    public ResultCache(CacheLimits limits, TimeProvider? time = null)
    {
        _limits = limits;
        _time = time ?? TimeProvider.System;
        _bySpan = _entries.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    public CacheLimits Limits => _limits;

    /// <summary>Called after an invalidation with the database and relation names (null: every relation), for sharing it.</summary>
    public Action<string, IReadOnlyList<string>?>? Invalidated { get; set; }

    /// <summary>A reload may change the limits; a smaller budget evicts at once.</summary>
    public void Reconfigure(CacheLimits limits)
    {
        lock (_lock)
        {
            _limits = limits;
            EvictOverBudget();
        }
    }

    /// <summary>The stored response for <paramref name="key"/>, counted as a hit or a miss; null when there is none.</summary>
    public byte[]? TryGet(ReadOnlySpan<byte> key) => TryGet(key, out _);

    /// <summary>
    /// As <see cref="TryGet(ReadOnlySpan{byte})"/>; on a miss, <paramref name="admit"/> says whether a response to this
    /// key would be stored now (see the admission remarks): when false, capturing it is wasted work.
    /// </summary>
    public byte[]? TryGet(ReadOnlySpan<byte> key, out bool admit)
    {
        admit = false;
        lock (_lock)
        {
            if (_bySpan.TryGetValue(key, out var entry))
            {
                if (entry.ExpiresAt != 0 && _time.GetTimestamp() >= entry.ExpiresAt)
                {
                    Remove(entry);
                }
                else
                {
                    MoveToNewest(entry);
                    _hits++;
                    return entry.Response;
                }
            }

            _misses++;
            admit = Admits(key);
            return null;
        }
    }

    /// <summary>
    /// The key prefix for a session's database, user and settings (<paramref name="prefix"/>, their full text), as this
    /// store keeps it: a marker byte and a number this instance gave that exact text. The text runs to a few hundred
    /// bytes (every reported parameter), more than the statement and its result together for a pgbench -S entry;
    /// numbered, entries are half the size, so twice as many fit, and each lookup hashes a third of the bytes. Past
    /// 65,536 distinct texts (application_name is one of them) new ones keep their full text, which never starts
    /// with the marker. Keys shared with other instances (Redis) must keep the full text.
    /// </summary>
    public byte[] CompactPrefix(string prefix)
    {
        if (_prefixes.TryGetValue(prefix, out var compact))
        {
            return compact;
        }

        if (_prefixes.Count >= 65_536)
        {
            return System.Text.Encoding.UTF8.GetBytes(prefix);
        }

        lock (_prefixes)
        {
            return _prefixes.GetOrAdd(prefix, static (_, count) =>
            {
                var bytes = new byte[5];
                bytes[0] = 0x01;
                System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(1), count);
                return bytes;
            }, _prefixes.Count);
        }
    }

    /// <summary>A lookup answered elsewhere (the shared store), counted here for SHOW POOL_CACHE and /metrics.</summary>
    public void CountLookup(bool hit)
    {
        lock (_lock)
        {
            if (hit)
            {
                _hits++;
            }
            else
            {
                _misses++;
            }
        }
    }

    /// <summary>A response sent to the shared store, counted as stored.</summary>
    public void CountStore()
    {
        lock (_lock)
        {
            _stores++;
        }
    }

    /// <summary>The sequence number a capture starts at; pass it to <see cref="TryAdd"/>.</summary>
    public long BeginCapture() => Volatile.Read(ref _sequence);

    /// <summary>
    /// Stores a captured response unless it is too large or one of its relations was invalidated since
    /// <paramref name="capturedAt"/>. <paramref name="key"/> and <paramref name="response"/> are kept as given.
    /// </summary>
    public bool TryAdd(byte[] key, byte[] response, string database, string[] relations, long capturedAt)
    {
        long size = key.Length + response.Length + EntryOverhead;
        var limits = _limits;
        if (response.Length > limits.MaxEntrySize || size > limits.TotalSize)
        {
            return false;
        }

        lock (_lock)
        {
            if (_databaseSequence.TryGetValue(database, out long dbSeq) && dbSeq > capturedAt)
            {
                return false;
            }

            foreach (var relation in relations)
            {
                if (_relationSequence.TryGetValue(new RelationKey(database, relation), out long seq) && seq > capturedAt)
                {
                    return false;
                }
            }

            if (_entries.TryGetValue(key, out var old))
            {
                Remove(old);
            }

            long expires = limits.Expire > TimeSpan.Zero
                ? _time.GetTimestamp() + (long)(limits.Expire.TotalSeconds * _time.TimestampFrequency)
                : 0;
            var entry = new Entry(key, response, database, relations, size, expires);
            _entries.Add(key, entry);
            foreach (var relation in relations)
            {
                ref var set = ref CollectionsMarshal.GetValueRefOrAddDefault(_byRelation, new RelationKey(database, relation), out _);
                (set ??= []).Add(entry);
            }

            entry.Older = _newest;
            if (_newest is not null)
            {
                _newest.Newer = entry;
            }

            _newest = entry;
            _oldest ??= entry;
            _bytes += size;
            _stores++;
            EvictOverBudget();
            return true;
        }
    }

    /// <summary>Removes every entry of <paramref name="database"/> that read one of <paramref name="relations"/>.</summary>
    public int Invalidate(string database, IReadOnlyList<string> relations, bool share = true)
    {
        int removed = 0;
        lock (_lock)
        {
            long seq = ++_sequence;
            foreach (var relation in relations)
            {
                var key = new RelationKey(database, relation);
                _relationSequence[key] = seq;
                if (_byRelation.TryGetValue(key, out var set))
                {
                    foreach (var entry in set.ToArray())
                    {
                        Remove(entry);
                        removed++;
                    }
                }
            }

            _invalidations++;
        }

        if (share)
        {
            Invalidated?.Invoke(database, relations);
        }

        return removed;
    }

    /// <summary>Removes every entry of <paramref name="database"/> (a write that names no relation: DO, CALL, a write function).</summary>
    public int InvalidateDatabase(string database, bool share = true)
    {
        int removed = 0;
        lock (_lock)
        {
            _databaseSequence[database] = ++_sequence;
            foreach (var key in _safety.Keys.Where(k => k.Database == database).ToArray())
            {
                // A DO block or a function may have run DDL: what the catalog said is asked again.
                _safety.Remove(key);
                _families.Remove(key);
            }

            foreach (var entry in _entries.Values.Where(e => e.Database == database).ToArray())
            {
                Remove(entry);
                removed++;
            }

            _invalidations++;
        }

        if (share)
        {
            Invalidated?.Invoke(database, null);
        }

        return removed;
    }

    /// <summary>PURGE CACHE: everything, or every entry that read <paramref name="relation"/> in any database.</summary>
    public int Purge(string? relation)
    {
        int removed = 0;
        lock (_lock)
        {
            long seq = ++_sequence;
            foreach (var entry in _entries.Values.ToArray())
            {
                if (relation is null || Array.IndexOf(entry.Relations, relation) >= 0)
                {
                    if (relation is not null)
                    {
                        _relationSequence[new RelationKey(entry.Database, relation)] = seq;
                    }

                    Remove(entry);
                    removed++;
                }
            }

            if (relation is null)
            {
                foreach (var db in _databaseSequence.Keys.ToArray())
                {
                    _databaseSequence[db] = seq;
                }
            }
        }

        return removed;
    }

    /// <summary>
    /// What the catalog said about a name read by a cacheable statement (a plain table, or an immutable function:
    /// true; a view, a temporary or system relation, a function that is not immutable: false); null when unknown.
    /// </summary>
    public bool? SafetyOf(string database, string name)
    {
        lock (_lock)
        {
            return _safety.TryGetValue(new RelationKey(database, name), out bool safe) ? safe : null;
        }
    }

    /// <param name="family">For a partitioned table or a partition: every relation of its partition tree.</param>
    public void SetSafety(string database, string name, bool safe, string[]? family = null)
    {
        lock (_lock)
        {
            var key = new RelationKey(database, name);
            _safety[key] = safe;
            if (family is null)
            {
                _families.Remove(key);
            }
            else
            {
                _families[key] = family;
            }
        }
    }

    /// <summary>What the catalog said <paramref name="name"/>'s partition tree is (null: not in one, or not asked).</summary>
    public string[]? FamilyOf(string database, string name)
    {
        lock (_lock)
        {
            return _families.GetValueOrDefault(new RelationKey(database, name));
        }
    }

    /// <summary>DDL on these names: what the catalog said may have changed (a table replaced by a view).</summary>
    public void ForgetSafety(string database, IReadOnlyList<string> names)
    {
        lock (_lock)
        {
            foreach (var name in names)
            {
                _safety.Remove(new RelationKey(database, name));
            }

            // ATTACH/DETACH PARTITION names one table of a tree: what the catalog said about every member is asked again.
            foreach (var key in _families.Where(kv => kv.Key.Database == database && kv.Value.Any(names.Contains)).Select(kv => kv.Key).ToArray())
            {
                _families.Remove(key);
                _safety.Remove(key);
            }
        }
    }

    public CacheStats Stats
    {
        get
        {
            lock (_lock)
            {
                return new CacheStats(_hits, _misses, _entries.Count, _bytes, _evictions, _invalidations, _stores, _declined);
            }
        }
    }

    // Bits of the doorkeeper: about 8 per entry of a full store of small results, at least 64 Ki.
    private int DoorkeeperWords => (int)Math.Clamp(_limits.TotalSize / 256 * 8 / 64, 1024, 1 << 20);

    private bool Admits(ReadOnlySpan<byte> key)
    {
        // Room left: everything is stored (a miss's response is usually far smaller than 1/16 of the budget).
        if (_bytes < _limits.TotalSize - (_limits.TotalSize >> 4))
        {
            return true;
        }

        int words = DoorkeeperWords;
        if (_doorkeeper is null || _doorkeeper.Length != words)
        {
            _doorkeeper = new ulong[words];
            _doorkeeperSet = 0;
        }

        // Two probes from one hash (Kirsch and Mitzenmacher): the second from its high half, odd so it walks all bits.
        uint hash = (uint)ByteKeyComparer.Instance.GetHashCode(key);
        uint step = (hash >> 16) | 1;
        ulong bitCount = (ulong)words * 64;
        bool seen = true;
        for (uint i = 0, h = hash; i < 2; i++, h += step)
        {
            ulong bit = h % bitCount;
            ref ulong word = ref _doorkeeper[bit >> 6];
            ulong mask = 1UL << (int)(bit & 63);
            if ((word & mask) == 0)
            {
                word |= mask;
                seen = false;
            }
        }

        if (seen)
        {
            return true;
        }

        // Cleared when an eighth of the bits are set: false "seen before" answers stay rare, and old keys age out.
        if (++_doorkeeperSet > words * 64 / 16)
        {
            Array.Clear(_doorkeeper);
            _doorkeeperSet = 0;
        }

        _declined++;
        return false;
    }

    private void EvictOverBudget()
    {
        while (_bytes > _limits.TotalSize && _oldest is { } victim)
        {
            Remove(victim);
            _evictions++;
        }
    }

    private void MoveToNewest(Entry entry)
    {
        if (entry == _newest)
        {
            return;
        }

        Unlink(entry);
        entry.Older = _newest;
        entry.Newer = null;
        _newest!.Newer = entry;
        _newest = entry;
        _oldest ??= entry;
    }

    private void Unlink(Entry entry)
    {
        if (entry.Newer is not null)
        {
            entry.Newer.Older = entry.Older;
        }
        else
        {
            _newest = entry.Older;
        }

        if (entry.Older is not null)
        {
            entry.Older.Newer = entry.Newer;
        }
        else
        {
            _oldest = entry.Newer;
        }

        entry.Newer = entry.Older = null;
    }

    private void Remove(Entry entry)
    {
        if (!_entries.Remove(entry.Key))
        {
            return;
        }

        Unlink(entry);
        _bytes -= entry.Size;
        foreach (var relation in entry.Relations)
        {
            var key = new RelationKey(entry.Database, relation);
            if (_byRelation.TryGetValue(key, out var set))
            {
                set.Remove(entry);
                if (set.Count == 0)
                {
                    _byRelation.Remove(key);
                }
            }
        }
    }

    private readonly record struct RelationKey(string Database, string Relation);

    private sealed class Entry(byte[] key, byte[] response, string database, string[] relations, long size, long expiresAt)
    {
        public byte[] Key { get; } = key;

        public byte[] Response { get; } = response;

        public string Database { get; } = database;

        public string[] Relations { get; } = relations;

        public long Size { get; } = size;

        public long ExpiresAt { get; } = expiresAt;

        public Entry? Newer { get; set; }

        public Entry? Older { get; set; }
    }
}
