using System.Buffers;
using FastPool.Protocol;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

/// <summary>What the client pump does with the bytes at the start of its buffer, as far as the cache is concerned.</summary>
internal enum SessionCacheStep : byte
{
    /// <summary>Not answered from the cache: scanned and forwarded as usual (a capture may have begun).</summary>
    Forward,

    /// <summary>The request is not whole yet.</summary>
    NeedMore,

    /// <summary>Answered from the cache: the request's bytes are consumed, the server saw nothing.</summary>
    Answered,

    /// <summary>The client could not be written to.</summary>
    ClientGone,
}

/// <summary>
/// The result cache in session pooling. The client keeps its server, so a request may be answered from the cache
/// only while that server owes the client nothing: outside a transaction, every ReadyForQuery received and
/// forwarded (55.2.4: a request's response ends with ReadyForQuery). <see cref="_sessionCacheGate"/> makes that
/// check and the cached send one step against the server pump, which holds the gate from each read of the server
/// until its bytes are forwarded: a cached response can never overtake, or interleave with, the server's bytes.
/// Session pooling does not track settings: the key holds the client's startup parameters, and a session that
/// changes a setting stops using the cache (see <see cref="CacheNoteStatement"/>).
/// </summary>
internal sealed partial class ClientSession
{
    private SemaphoreSlim? _sessionCacheGate;
    private string? _sessionModeStateKey;

    /// <summary>The startup parameters (options included), the session's whole state while it has not SET anything.</summary>
    private string SessionModeStateKey() =>
        _sessionModeStateKey ??= SessionStateKey.Build([], ClientSettings
            .Where(p => !s_nonSettings.Contains(p.Name) || p.Name == "options")
            .GroupBy(p => p.Name.ToLowerInvariant(), StringComparer.Ordinal)
            .Select(g => new KeyValuePair<string, string>(g.Key, g.Last().Value)));

    /// <summary>The server has answered everything the client sent, and is outside a transaction.</summary>
    private bool OwesNothing(ServerConnection server) =>
        server.Protocol.AtMessageBoundary && server.Protocol.TransactionStatus == TransactionStatus.Idle && _capture is not { Active: true };

    /// <summary>Client pump, before the scanner: a cacheable request at the start of <paramref name="buffer"/> is looked up.</summary>
    private async ValueTask<SessionCacheStep> SessionCacheStepAsync(ServerConnection server, ReadOnlySequence<byte> buffer, bool completed)
    {
        var gate = _sessionCacheGate!;
        if (_cacheOff || !_scanner.ClientAtBoundary || !OwesNothing(server))
        {
            return SessionCacheStep.Forward;
        }

        if (PrepareCacheKey(buffer, completed) == Lookahead.NeedMore)
        {
            return SessionCacheStep.NeedMore;
        }

        if (_query.CacheKeyLength == 0 || _cacheInUse is not { } cache)
        {
            return SessionCacheStep.Forward;
        }

        byte[]? hit;
        long? from;
        if (_runtime.SharedCache is { } shared)
        {
            var lookup = await shared.LookupAsync(_query.CacheKey.AsMemory(0, _query.CacheKeyLength)).ConfigureAwait(false);
            cache.CountLookup(lookup.Response is not null);
            (hit, from) = (lookup.Response, lookup.CaptureFrom);
        }
        else
        {
            hit = cache.TryGet(_query.CacheKey.AsSpan(0, _query.CacheKeyLength), out bool admit);
            from = hit is null && admit ? cache.BeginCapture() : null;
        }

        if (!gate.Wait(0))
        {
            // The server pump is forwarding (a notification, say): this request goes to the server.
            _query.CacheKeyLength = 0;
            return SessionCacheStep.Forward;
        }

        try
        {
            if (!OwesNothing(server))
            {
                _query.CacheKeyLength = 0;
                return SessionCacheStep.Forward;
            }

            if (hit is not null)
            {
                _query.CacheKeyLength = 0;
                try
                {
                    await _client.SendAsync(hit).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    _context.CloseReason = "client unexpected eof";
                    return SessionCacheStep.ClientGone;
                }

                _traffic.AddIn(_cacheRequestLength, 1);
                _traffic.AddOut(hit.Length, 1);
                return SessionCacheStep.Answered;
            }

            _query.CaptureFrom = from;
            BeginSessionCapture(server);
            return SessionCacheStep.Forward;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// A miss: the response is copied as the server pump forwards it, when the request may be cached. Names the catalog
    /// has not been asked about yet are asked about in the background (<see cref="CacheListener.AskCatalog"/>).
    /// </summary>
    private void BeginSessionCapture(ServerConnection server)
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

        if (unknown is not null)
        {
            _runtime.CacheListener.AskCatalog(database, Database, DatabaseName, unknown);
            return;
        }

        _runtime.CacheListener.Ensure(database, Database, DatabaseName);
        _capture ??= new ResponseCapture();
        _capture.Begin(_query.CacheKey.AsSpan(0, keyLength).ToArray(), CapturedRelations(cache, database), from, cache.Limits.MaxEntrySize);
    }
}
