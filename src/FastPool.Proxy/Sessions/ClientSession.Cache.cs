using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using FastPool.Cache;
using FastPool.Protocol;
using FastPool.Routing.Classification;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// The session's side of the query result cache (transaction and statement pooling; session pooling is in
/// ClientSession.SessionCache). A request is a cache candidate when the client holds no server (so it is outside
/// any transaction: 55.2.4) and it is one Query, or
/// unnamed Parse/Bind/Describe/Execute messages up to one Sync, whose statements all start like reads. Its key is
/// the server database, the login user, the client's whole tracked session state (search_path, TimeZone, DateStyle,
/// IntervalStyle, client_encoding, extra_float_digits, bytea_output, role, ...: <see cref="StateKey"/>) and the
/// request's bytes as sent, so parameter values, their formats and the result formats are part of it. A hit is
/// answered with the stored response (ReadyForQuery 'I' included) in one send, without a server. On a miss the
/// statements are classified, and the response of a cacheable read on the primary is copied as it is forwarded.
/// Writes the client sends invalidate what they touch when sent and again when their transaction ends, before
/// the ReadyForQuery that tells the client so is forwarded.
/// </summary>
internal sealed partial class ClientSession
{
    private ResultCache? _cacheInUse;
    private bool _cacheOff;
    private byte[] _cachePrefix = [];
    private string? _cachePrefixState;
    private ResultCache? _cachePrefixCache;
    private RedisResultStore? _cachePrefixShared;
    private int _cacheRequestLength;
    private ResponseCapture? _capture;
    private readonly List<string> _cacheRelations = [];
    private readonly List<string> _cacheFunctions = [];
    private readonly List<string> _cacheWrites = [];
    private bool _cacheWroteAll;
    private bool _cacheDirty;

    // What the client's named (prepared) write statements write: they run again with a Bind alone, which carries no
    // text, so every transaction of this session invalidates those tables again when it ends.
    private readonly List<string> _cacheNamedWrites = [];
    private bool _cacheNamedWroteAll;
    private string? _cacheDatabase;
    private string[] _lastCapturedRelations = [];

    /// <summary>The server database the entries belong to, the same for every entry name that reaches it.</summary>
    private string CacheDatabase
    {
        get
        {
            if (_cacheDatabase is null)
            {
                var node = Database.Nodes[0];
                _cacheDatabase = node.Host + ":" + node.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) + "/" + (Database.DbName ?? DatabaseName);
            }

            return _cacheDatabase;
        }
    }

    /// <summary>
    /// Before the pipeline runs for the request at the start of <paramref name="buffer"/>: sets the cache key when it
    /// is a candidate. NeedMore while the request is not whole yet.
    /// </summary>
    private Lookahead PrepareCacheKey(in ReadOnlySequence<byte> buffer, bool completed)
    {
        _query.CacheKeyLength = 0;
        _cacheInUse = _runtime.Cache;
        if (_cacheInUse is null || _cacheOff)
        {
            return Lookahead.Decided;
        }

        var reader = new SequenceReader<byte>(buffer);
        bool extended = false;
        while (true)
        {
            if (!MessageHeader.TryPeek(ref reader, out var header) || reader.Remaining < header.TotalLength)
            {
                return !completed && buffer.Length < ForwardingScanner.InspectLimit && (reader.Remaining < MessageHeader.Size || header.TotalLength <= ForwardingScanner.InspectLimit)
                    ? Lookahead.NeedMore
                    : Lookahead.Decided;
            }

            if (header.Length < 4 || header.TotalLength > ForwardingScanner.InspectLimit)
            {
                return Lookahead.Decided;
            }

            var body = reader.UnreadSequence.Slice(MessageHeader.Size, header.BodyLength);
            switch ((FrontendCode)header.Code)
            {
                case FrontendCode.Query when !extended:
                    if (!ForwardingScanner.TryGetQueryText(body, parse: false, out var text, out _) || !StartsLikeRead(text))
                    {
                        return Lookahead.Decided;
                    }

                    reader.Advance(header.TotalLength);
                    return KeyFor(buffer.Slice(0, reader.Consumed));
                case FrontendCode.Parse:
                    if (!ForwardingScanner.TryGetQueryText(body, parse: true, out var parsed, out bool named) || named || !StartsLikeRead(parsed))
                    {
                        return Lookahead.Decided;
                    }

                    break;
                case FrontendCode.Bind:
                    // Bind: portal name, statement name (55.7): both unnamed.
                    if (body.Length < 2 || !FirstTwoEmpty(body))
                    {
                        return Lookahead.Decided;
                    }

                    break;
                case FrontendCode.Describe:
                    if (body.Length < 2 || NthByte(body, 1) != 0)
                    {
                        return Lookahead.Decided;
                    }

                    break;
                case FrontendCode.Execute:
                    // Execute: portal name, then the row limit; a limit can suspend the portal: not cached.
                    if (body.Length != 5 || NthByte(body, 0) != 0 || !LimitIsZero(body))
                    {
                        return Lookahead.Decided;
                    }

                    break;
                case FrontendCode.Sync when extended:
                    reader.Advance(header.TotalLength);
                    return KeyFor(buffer.Slice(0, reader.Consumed));
                default:
                    return Lookahead.Decided;
            }

            extended = true;
            reader.Advance(header.TotalLength);
        }
    }

    private Lookahead KeyFor(in ReadOnlySequence<byte> request)
    {
        var state = PerTransaction ? StateKey() : SessionModeStateKey();
        var shared = _runtime.SharedCache;
        if (!ReferenceEquals(state, _cachePrefixState) || !ReferenceEquals(_cacheInUse, _cachePrefixCache) || !ReferenceEquals(shared, _cachePrefixShared))
        {
            string user = Database.User ?? User;
            string prefix = CacheDatabase + "\0" + user + "\0" + state + "\0";

            // Numbered by this store (it is this store's own key space), unless the keys are shared through Redis.
            _cachePrefix = shared is null && _cacheInUse is { } cache ? cache.CompactPrefix(prefix) : Encoding.UTF8.GetBytes(prefix);
            _cachePrefixState = state;
            _cachePrefixCache = _cacheInUse;
            _cachePrefixShared = shared;
        }

        long length = _cachePrefix.Length + request.Length;
        if (_query.CacheKey.Length < length)
        {
            _query.CacheKey = new byte[Math.Max(length, 1024)];
        }

        _cachePrefix.CopyTo(_query.CacheKey, 0);
        request.CopyTo(_query.CacheKey.AsSpan(_cachePrefix.Length));
        _query.CacheKeyLength = (int)length;
        _cacheRequestLength = (int)request.Length;
        return Lookahead.Decided;
    }

    /// <summary>The cache answered: the stored response goes out in one send and the request is consumed.</summary>
    private async ValueTask<bool> AnswerFromCacheAsync(byte[] response)
    {
        int length = _cacheRequestLength;
        _query.CacheKeyLength = 0;
        try
        {
            await _client.SendAsync(response).ConfigureAwait(false);
            var input = _client.Input;
            while (true)
            {
                var result = await input.ReadAsync().ConfigureAwait(false);
                if (result.Buffer.Length >= length)
                {
                    input.AdvanceTo(result.Buffer.GetPosition(length));
                    break;
                }

                input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    return false;
                }
            }
        }
        catch (Exception)
        {
            _context.CloseReason = "client unexpected eof";
            return false;
        }

        _traffic.AddIn(length, 1);
        _traffic.AddOut(response.Length, 1);
        return true;
    }

    /// <summary>
    /// After a miss took a server: starts copying the response when the request may be cached. Names the catalog
    /// has not been asked about yet are looked up first on that server (one short query, once per name): a view's
    /// base tables are unknown to the lexer, a temporary table's name may hide another, a function may be volatile.
    /// </summary>
    private async ValueTask BeginCaptureIfCacheableAsync(Pooling.ServerConnection server)
    {
        if (!TryAnalyzeCacheable(server, out var cache, out long from, out int keyLength))
        {
            return;
        }

        string database = CacheDatabase;
        if (!NamesMayBeSafe(cache, database, out var unknown))
        {
            return;
        }

        if (unknown is not null && !await AskCatalogAsync(server, cache, database, unknown).ConfigureAwait(false))
        {
            return;
        }

        // Writes made directly on the server reach this database's entries through the triggers' notifications.
        _runtime.CacheListener.Ensure(database, Database, DatabaseName);
        _capture ??= new ResponseCapture();
        _capture.Begin(_query.CacheKey.AsSpan(0, keyLength).ToArray(), CapturedRelations(cache, database), from, cache.Limits.MaxEntrySize);
    }

    /// <summary>The relations an entry depends on: those it read and, for a partitioned table or a partition, its whole partition tree.</summary>
    private string[] CapturedRelations(ResultCache cache, string database)
    {
        bool family = false;
        foreach (var name in _cacheRelations)
        {
            family |= cache.FamilyOf(database, name) is not null;
        }

        if (!family)
        {
            // The common case: the session's statements read the same tables again, and the entries share one array.
            if (!_lastCapturedRelations.AsSpan().SequenceEqual(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_cacheRelations)))
            {
                _lastCapturedRelations = [.. _cacheRelations.Distinct(StringComparer.Ordinal)];
                if (_lastCapturedRelations.Length != _cacheRelations.Count)
                {
                    // Duplicates: not comparable with the list next time; keep this array to this entry.
                    var distinct = _lastCapturedRelations;
                    _lastCapturedRelations = [];
                    return distinct;
                }
            }

            return _lastCapturedRelations;
        }

        var relations = new HashSet<string>(_cacheRelations, StringComparer.Ordinal);
        foreach (var name in _cacheRelations)
        {
            if (cache.FamilyOf(database, name) is { } members)
            {
                relations.UnionWith(members);
            }
        }

        return [.. relations];
    }

    /// <summary>
    /// False when a name read is known to be unsafe (a view, a temporary table, a function that is not immutable);
    /// <paramref name="unknown"/>: the names the catalog has not been asked about yet.
    /// </summary>
    private bool NamesMayBeSafe(ResultCache cache, string database, out List<string>? unknown)
    {
        var settings = _runtime.Config.FastPool.Cache;
        unknown = null;
        return NamesMayBeSafe(_cacheRelations, cache, database, settings.SafeTables, ref unknown)
            && NamesMayBeSafe(_cacheFunctions, cache, database, settings.SafeTables, ref unknown);
    }

    private static bool NamesMayBeSafe(List<string> names, ResultCache cache, string database, IReadOnlySet<string> safeTables, ref List<string>? unknown)
    {
        foreach (var name in names)
        {
            if (safeTables.Contains(name))
            {
                continue;
            }

            switch (cache.SafetyOf(database, name))
            {
                case false:
                    return false;
                case null:
                    (unknown ??= []).Add(name);
                    break;
            }
        }

        return true;
    }

    /// <summary>The catalog question on the session's own server (it is idle: the request is not sent yet).</summary>
    private ValueTask<bool> AskCatalogAsync(Pooling.ServerConnection server, ResultCache cache, string database, List<string> names) =>
        AskCatalogOnAsync(server, _context.Builder, cache, database, names);

    /// <summary>
    /// One query for all the unknown names: those that are not a plain or partitioned table of a user schema, or
    /// that name a function any overload of which is not immutable (PostgreSQL docs 53.11 pg_class relkind and
    /// relpersistence, 53.39 pg_proc provolatile). True when all are safe.
    /// </summary>
    internal static async ValueTask<bool> AskCatalogOnAsync(Pooling.ServerConnection server, MessageBuilder builder, ResultCache cache, string database, List<string> names)
    {
        var list = new StringBuilder("ARRAY[");
        for (int i = 0; i < names.Count; i++)
        {
            list.Append(i == 0 ? "'" : ",'").Append(names[i].Replace("'", "''", StringComparison.Ordinal)).Append('\'');
        }

        list.Append("]::pg_catalog.text[]");

        // Second column: for each name in a partition tree (a partitioned table or a partition: 53.11 relkind 'p',
        // relispartition), every relation of that tree (9.27.4 pg_partition_root, pg_partition_tree), so a write to a
        // partition reaches what read its parent, and the other way round.
        string sql = "SELECT (SELECT coalesce(pg_catalog.string_agg(n, pg_catalog.chr(1)), '') FROM pg_catalog.unnest(" + list + ") n"
            + " WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
            + " WHERE c.relname = n AND (c.relkind NOT IN ('r', 'p') OR c.relpersistence = 't'"
            + " OR s.nspname IN ('pg_catalog', 'information_schema') OR s.nspname LIKE 'pg_temp%' OR s.nspname LIKE 'pg_toast%')"
            + ") OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.proname = n AND p.provolatile <> 'i')),"
            + " (SELECT coalesce(pg_catalog.string_agg(n OPERATOR(pg_catalog.||) pg_catalog.chr(2) OPERATOR(pg_catalog.||) f, pg_catalog.chr(1)), '')"
            + " FROM (SELECT n, (SELECT pg_catalog.string_agg(DISTINCT m.relname::pg_catalog.text, pg_catalog.chr(3))"
            + " FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.pg_partition_tree(pg_catalog.pg_partition_root(c.oid)) t"
            + " JOIN pg_catalog.pg_class m ON m.oid = t.relid WHERE c.relname = n AND (c.relkind = 'p' OR c.relispartition)) f"
            + " FROM pg_catalog.unnest(" + list + ") n) x WHERE f IS NOT NULL)";
        string?[] row;
        try
        {
            using var cts = new CancellationTokenSource(s_resetTimeout);
            row = await Pooling.MessageIo.QueryFirstRowAsync(server, builder, sql, cts.Token).ConfigureAwait(false);
        }
        catch (Pooling.ServerException)
        {
            return false;
        }
        catch (Exception)
        {
            // The server did not answer: it is not handed to anyone else, and the client's request fails on it.
            server.Broken = true;
            return false;
        }

        var unsafeNames = (row.Length > 0 ? row[0] ?? string.Empty : string.Empty).Split('\u0001', StringSplitOptions.RemoveEmptyEntries);
        var families = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var item in (row.Length > 1 ? row[1] ?? string.Empty : string.Empty).Split('\u0001', StringSplitOptions.RemoveEmptyEntries))
        {
            int at = item.IndexOf('\u0002', StringComparison.Ordinal);
            if (at > 0)
            {
                families[item[..at]] = item[(at + 1)..].Split('\u0003', StringSplitOptions.RemoveEmptyEntries);
            }
        }

        foreach (var name in names)
        {
            cache.SetSafety(database, name, Array.IndexOf(unsafeNames, name) < 0, families.GetValueOrDefault(name));
        }

        return unsafeNames.Length == 0;
    }

    private bool TryAnalyzeCacheable(Pooling.ServerConnection server, out ResultCache cache, out long from, out int keyLength)
    {
        cache = null!;
        from = 0;
        keyLength = _query.CacheKeyLength;
        _query.CacheKeyLength = 0;
        if (_query.CaptureFrom is not long captureFrom || keyLength == 0 || _cacheInUse is not { } inUse)
        {
            return false;
        }

        cache = inUse;
        from = captureFrom;

        // A standby may not have replayed a write that already invalidated the cache: only the primary's answers are kept.
        if (Topology.Nodes.Length > 1 && server.Node != Topology.Primary)
        {
            return false;
        }

        var settings = _runtime.Config.FastPool;
        _cacheRelations.Clear();
        _cacheFunctions.Clear();
        var request = _query.CacheKey.AsSpan(_cachePrefix.Length, keyLength - _cachePrefix.Length);
        while (request.Length >= MessageHeader.Size)
        {
            byte code = request[0];
            int total = 1 + BinaryPrimitives.ReadInt32BigEndian(request[1..]);
            if (code is (byte)FrontendCode.Query or (byte)FrontendCode.Parse)
            {
                var body = request[MessageHeader.Size..total];
                if (code == (byte)FrontendCode.Parse)
                {
                    body = body[(body.IndexOf((byte)0) + 1)..];
                }

                int nul = body.IndexOf((byte)0);
                var text = nul >= 0 ? body[..nul] : body;
                if (CacheClassifier.AnalyzeRead(text, settings.Routing.Classifier, settings.Cache.VolatileFunctions, _cacheRelations, _cacheFunctions) != CacheReadVerdict.Cacheable)
                {
                    return false;
                }
            }

            request = request[total..];
        }

        var unsafeTables = settings.Cache.UnsafeTables;
        foreach (var relation in _cacheRelations)
        {
            if (unsafeTables.Contains(relation))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The server pump forwarded <paramref name="forwarded"/>: feeds the capture, and stores a complete response.</summary>
    private void FeedCapture(in ReadOnlySequence<byte> forwarded)
    {
        var capture = _capture!;
        if (_prepared is not null && !_prepared.ToClient.IsEmpty)
        {
            // What reaches the client is not what the server sent.
            capture.Abandon();
            return;
        }

        if (capture.Feed(forwarded) is { } response)
        {
            if (_runtime.SharedCache is { } shared)
            {
                // Redis checks, atomically, that nothing it read was invalidated since the capture began.
                if (_cacheInUse is { } cache && shared.Store(capture.Key, response, capture.Relations, capture.CapturedFrom, cache.Limits.Expire))
                {
                    cache.CountStore();
                }
            }
            else
            {
                _cacheInUse?.TryAdd(capture.Key, response, CacheDatabase, capture.Relations, capture.CapturedFrom);
            }

            capture.Abandon();
        }
    }

    /// <summary>
    /// For each Query and Parse the client sends (the scanner's inspection): writes invalidate what they touch now,
    /// and are kept to invalidate again when their transaction ends; a temporary table ends caching for the session
    /// (its name may hide a cached table's).
    /// </summary>
    internal void NoteStatementForCache(ReadOnlySpan<byte> text, bool named) => CacheNoteStatement(text, named);

    private void CacheNoteStatement(ReadOnlySpan<byte> text, bool named)
    {
        var cache = _runtime.Cache;
        if (cache is null)
        {
            return;
        }

        var routing = _runtime.Config.FastPool.Routing.Classifier;
        var traits = Routing.Classification.SqlClassifier.Classify(text, routing);
        if ((traits & Routing.Classification.QueryTraits.TemporaryObject) != 0)
        {
            _cacheOff = true;
        }

        if (!PerTransaction && (traits & (Routing.Classification.QueryTraits.SessionSetting | Routing.Classification.QueryTraits.SessionAuthorization)) != 0)
        {
            // Session pooling does not track the client's settings (its server keeps them): a session that changed
            // one (search_path, role, TimeZone...) reads what its key would not tell apart, so it stops using the cache.
            _cacheOff = true;
        }

        if ((traits & Routing.Classification.QueryTraits.Write) == 0)
        {
            return;
        }

        int before = _cacheWrites.Count;
        var scope = CacheClassifier.AnalyzeWrites(text, routing, _cacheWrites);
        if (scope == CacheWriteScope.Tables && CacheClassifier.IsDdl(text) && ContainsWord(text, "partition"u8))
        {
            // CREATE TABLE ... PARTITION OF, ATTACH/DETACH PARTITION change a partition tree that cached entries
            // recorded (each depends on its whole tree): the database's entries and what the catalog said go.
            _cacheWrites.RemoveRange(before, _cacheWrites.Count - before);
            scope = CacheWriteScope.Everything;
        }

        switch (scope)
        {
            case CacheWriteScope.Tables:
                var written = _cacheWrites.GetRange(before, _cacheWrites.Count - before);
                if (CacheClassifier.IsDdl(text))
                {
                    cache.ForgetSafety(CacheDatabase, written);
                }

                cache.Invalidate(CacheDatabase, written);
                _cacheDirty = true;
                if (named)
                {
                    foreach (var table in written)
                    {
                        if (!_cacheNamedWrites.Contains(table))
                        {
                            _cacheNamedWrites.Add(table);
                        }
                    }
                }

                break;
            case CacheWriteScope.Everything:
                cache.InvalidateDatabase(CacheDatabase);
                _cacheWroteAll = true;
                _cacheDirty = true;
                _cacheNamedWroteAll |= named;
                break;
        }
    }

    /// <summary>
    /// A ReadyForQuery that ends a transaction is about to reach the client: what it wrote is invalidated again, so no
    /// read that raced its commit stays cached, before the client (or anyone it tells) can read again.
    /// </summary>
    /// <remarks>
    /// With a shared Redis store the returned task completes when Redis has the invalidation (or could not be
    /// reached: then nothing is served from it until it is told): another FastPool never serves the old result to
    /// someone the client told of its commit.
    /// </remarks>
    private ValueTask CacheTransactionEndedAsync(Pooling.ServerConnection server)
    {
        var cache = _runtime.Cache;
        var shared = _runtime.SharedCache;
        Task? sharing = null;
        if (cache is not null)
        {
            if (_cacheWroteAll)
            {
                cache.InvalidateDatabase(CacheDatabase, share: shared is null);
                sharing = shared?.InvalidateAsync(CacheDatabase, null);
            }
            else if (_cacheWrites.Count > 0)
            {
                cache.Invalidate(CacheDatabase, _cacheWrites, share: shared is null);
                sharing = shared?.InvalidateAsync(CacheDatabase, _cacheWrites.ToArray());
            }
        }

        if (server.TransactionStatus == TransactionStatus.Idle)
        {
            _cacheWrites.Clear();
            _cacheWroteAll = _cacheNamedWroteAll;
            _cacheWrites.AddRange(_cacheNamedWrites);
            _cacheDirty = _cacheWroteAll || _cacheWrites.Count > 0;
        }

        return sharing is null ? ValueTask.CompletedTask : new ValueTask(sharing);
    }

    /// <summary>
    /// The session ends with writes whose transaction's end was not seen (the server or the client went away
    /// mid-transaction): a COMMIT may still have happened, so they are invalidated once more.
    /// </summary>
    private void CacheSessionEnded()
    {
        _capture?.Abandon();
        if (!_cacheDirty || _runtime.Cache is not { } cache)
        {
            return;
        }

        if (_cacheWroteAll)
        {
            cache.InvalidateDatabase(CacheDatabase);
        }
        else
        {
            cache.Invalidate(CacheDatabase, _cacheWrites);
        }

        _cacheWrites.Clear();
        _cacheDirty = false;
    }

    /// <summary>The first statement word of a text is one a cacheable read starts with (a cheap pre-check).</summary>
    private static bool StartsLikeRead(in ReadOnlySequence<byte> text)
    {
        // The first key word is within a few hundred bytes unless a long comment comes first (then: no cache).
        Span<byte> head = stackalloc byte[256];
        int n = (int)Math.Min(text.Length, head.Length);
        text.Slice(0, n).CopyTo(head);
        return CacheClassifier.StartsLikeRead(head[..n], complete: n == text.Length);
    }

    /// <summary>The word appears in the text (ASCII, any case); a cheap test, false positives only cost invalidations.</summary>
    private static bool ContainsWord(ReadOnlySpan<byte> text, ReadOnlySpan<byte> lowerWord)
    {
        for (int i = text.IndexOfAny((byte)lowerWord[0], (byte)(lowerWord[0] - 32)); i >= 0 && i + lowerWord.Length <= text.Length;)
        {
            if (System.Text.Ascii.EqualsIgnoreCase(text.Slice(i, lowerWord.Length), lowerWord))
            {
                return true;
            }

            int next = text[(i + 1)..].IndexOfAny((byte)lowerWord[0], (byte)(lowerWord[0] - 32));
            i = next < 0 ? -1 : i + 1 + next;
        }

        return false;
    }

    private static bool FirstTwoEmpty(in ReadOnlySequence<byte> body) => NthByte(body, 0) == 0 && NthByte(body, 1) == 0;

    private static byte NthByte(in ReadOnlySequence<byte> body, int n)
    {
        var reader = new SequenceReader<byte>(body);
        reader.Advance(n);
        return reader.TryRead(out byte b) ? b : (byte)0xFF;
    }

    private static bool LimitIsZero(in ReadOnlySequence<byte> body)
    {
        var reader = new SequenceReader<byte>(body);
        reader.Advance(1);
        return reader.TryReadBigEndian(out int limit) && limit == 0;
    }
}

/// <summary>Session pooling with the cache on: each Query and Parse text is looked at for the writes it makes.</summary>
internal sealed class SessionModeCacheInspector(ClientSession session) : IQueryInspector
{
    private byte[] _scratch = [];

    public bool Inspect(in ReadOnlySequence<byte> sql, bool namedStatement)
    {
        session.NoteStatementForCache(sql.IsSingleSegment ? sql.FirstSpan : Copy(sql), namedStatement);
        return true;
    }

    // Plain session pooling keeps no statements: a named write's later Binds are covered by the session's named writes.
    public bool InspectBind(PreparedStatements.ClientStatement? statement) => true;

    private ReadOnlySpan<byte> Copy(in ReadOnlySequence<byte> sql)
    {
        if (_scratch.Length < sql.Length)
        {
            _scratch = new byte[Math.Max(sql.Length, 1024)];
        }

        sql.CopyTo(_scratch);
        return _scratch.AsSpan(0, (int)sql.Length);
    }
}
