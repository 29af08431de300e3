using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using StackExchange.Redis;

namespace FastPool.Cache;

/// <summary>The shared store's answer to a lookup.</summary>
/// <param name="Response">The cached response (a hit), else null.</param>
/// <param name="CaptureFrom">On a miss with Redis reachable: the sequence a capture of the response starts at.</param>
public readonly record struct SharedLookup(byte[]? Response, long? CaptureFrom);

/// <summary>
/// memqcache_method = redis: results live in one Redis server shared by several FastPool instances, so a result
/// one of them cached answers the others, and a write through any of them invalidates it for all. Correctness does
/// not rest on pub/sub delivery: every entry records the invalidation sequence its capture began at, and every
/// lookup checks it against the version keys of the relations it read, in the same atomic script
/// (<see cref="RedisScripts"/>), so an entry is never served once the invalidation of a write has returned. The
/// invalidation is also published on <see cref="Channel"/> for the other instances' local bookkeeping.
/// </summary>
/// <remarks>
/// Redis unreachable: lookups are misses (the statement goes to PostgreSQL), nothing is stored, and no client sees
/// an error; commands fail at once instead of queueing (<see cref="BacklogPolicy.FailFast"/>). The databases whose
/// invalidations could not be delivered are remembered, and invalidated whole before the cache is used again: an
/// entry written before the outage cannot be served after a write made during it.
/// </remarks>
public sealed class RedisResultStore : IAsyncDisposable
{
    /// <summary>The pub/sub channel invalidations are published on.</summary>
    public const string Channel = "fastpool:invalidate";

    private static readonly byte[] s_entryPrefix = "fastpool:e:"u8.ToArray();
    private static readonly RedisChannel s_channel = RedisChannel.Literal(Channel);

    private readonly ConfigurationOptions _options;
    private readonly string _instance = Guid.NewGuid().ToString("N");
    private readonly ConcurrentDictionary<string, byte> _pending = new(StringComparer.Ordinal);
    private readonly Task _connecting;
    private readonly CancellationTokenSource _stopping = new();
    private volatile ConnectionMultiplexer? _redis;
    private int _unavailable;
    private int _flushing;

    public RedisResultStore(string configuration)
    {
        Configuration = configuration;
        _options = ConfigurationOptions.Parse(configuration);
        _options.AbortOnConnectFail = false;
        _options.BacklogPolicy = BacklogPolicy.FailFast;
        _options.ConnectTimeout = 2000;
        _options.AsyncTimeout = 1000;
        _options.SyncTimeout = 1000;
        _options.ReconnectRetryPolicy = new LinearRetry(500);
        _options.ClientName ??= "fastpool";
        _connecting = ConnectAsync();
    }

    /// <summary>memqcache_redis as configured (a reload that changes it replaces the store).</summary>
    public string Configuration { get; }

    /// <summary>Redis became unreachable (false, with the reason) or reachable again (true): worth one log line each.</summary>
    public Action<bool, string>? AvailabilityChanged { get; set; }

    /// <summary>Another instance invalidated these relations (null: the whole database).</summary>
    public Action<string, IReadOnlyList<string>?>? RemoteInvalidation { get; set; }

    /// <summary>Looks <paramref name="key"/> up; a miss tells where a capture starts, or nothing when Redis is unreachable.</summary>
    public async ValueTask<SharedLookup> LookupAsync(ReadOnlyMemory<byte> key)
    {
        if (_redis is not { } redis || !await FlushPendingAsync(redis).ConfigureAwait(false))
        {
            return default;
        }

        string database = DatabaseOf(key.Span);
        try
        {
            var result = await redis.GetDatabase().ScriptEvaluateAsync(
                RedisScripts.Lookup,
                [EntryKey(key.Span), SequenceKey(database), DatabaseVersionKey(database)],
                [VersionPrefix(database)]).ConfigureAwait(false);
            Reachable();
            var items = (RedisResult[])result!;
            return (long)items[0] == 1
                ? new SharedLookup((byte[]?)items[1], null)
                : new SharedLookup(null, long.Parse((string)items[1]!, CultureInfo.InvariantCulture));
        }
        catch (Exception ex)
        {
            Unreachable(ex);
            return default;
        }
    }

    /// <summary>Stores a captured response in the background (the client does not wait for it); true when sent.</summary>
    public bool Store(byte[] key, byte[] response, string[] relations, long capturedAt, TimeSpan expire)
    {
        if (_redis is not { } redis || !_pending.IsEmpty)
        {
            return false;
        }

        string database = DatabaseOf(key);
        long ttl = expire > TimeSpan.Zero ? Math.Max(1, (long)expire.TotalMilliseconds) : 0;
        _ = StoreAsync(redis, key, response, database, relations, capturedAt, ttl);
        return true;
    }

    private async Task StoreAsync(ConnectionMultiplexer redis, byte[] key, byte[] response, string database, string[] relations, long capturedAt, long ttl)
    {
        try
        {
            await redis.GetDatabase().ScriptEvaluateAsync(
                RedisScripts.Store,
                [EntryKey(key), SequenceKey(database), DatabaseVersionKey(database)],
                [
                    VersionPrefix(database), capturedAt.ToString(CultureInfo.InvariantCulture), string.Join('\u0001', relations),
                    response, ttl.ToString(CultureInfo.InvariantCulture),
                ]).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Unreachable(ex);
        }
    }

    /// <summary>
    /// Invalidates <paramref name="relations"/> (null: the whole database) for every instance; completes when Redis
    /// has applied it, or failed to (then the database is invalidated whole once Redis answers again). Never throws.
    /// </summary>
    public async Task InvalidateAsync(string database, IReadOnlyList<string>? relations)
    {
        if (relations is { Count: 0 })
        {
            return;
        }

        if (_redis is not { } redis || !await TryInvalidateAsync(redis, database, relations).ConfigureAwait(false))
        {
            _pending.TryAdd(database, 0);
        }
    }

    private async ValueTask<bool> TryInvalidateAsync(ConnectionMultiplexer redis, string database, IReadOnlyList<string>? relations)
    {
        int count = relations?.Count ?? 0;
        var args = new RedisValue[3 + count];
        args[0] = VersionPrefix(database);
        args[1] = Channel;
        var message = new StringBuilder(_instance).Append('\0').Append(database);
        for (int i = 0; i < count; i++)
        {
            args[3 + i] = relations![i];
            message.Append('\0').Append(relations[i]);
        }

        args[2] = message.ToString();
        try
        {
            await redis.GetDatabase().ScriptEvaluateAsync(RedisScripts.Invalidate, [SequenceKey(database), DatabaseVersionKey(database)], args).ConfigureAwait(false);
            Reachable();
            return true;
        }
        catch (Exception ex)
        {
            Unreachable(ex);
            return false;
        }
    }

    /// <summary>PURGE CACHE: removes every entry of every instance (SCAN and UNLINK of the entry keys); the count removed.</summary>
    public async Task<long> PurgeAsync()
    {
        if (_redis is not { } redis)
        {
            return 0;
        }

        long removed = 0;
        try
        {
            foreach (var endpoint in redis.GetEndPoints())
            {
                var server = redis.GetServer(endpoint);
                var batch = new List<RedisKey>();
                await foreach (var key in server.KeysAsync(pattern: "fastpool:e:*", pageSize: 500).ConfigureAwait(false))
                {
                    batch.Add(key);
                    if (batch.Count == 500)
                    {
                        removed += await redis.GetDatabase().KeyDeleteAsync([.. batch]).ConfigureAwait(false);
                        batch.Clear();
                    }
                }

                if (batch.Count > 0)
                {
                    removed += await redis.GetDatabase().KeyDeleteAsync([.. batch]).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex)
        {
            Unreachable(ex);
        }

        return removed;
    }

    /// <summary>Before the cache is used after an outage: the databases written meanwhile are invalidated whole.</summary>
    private ValueTask<bool> FlushPendingAsync(ConnectionMultiplexer redis)
    {
        return _pending.IsEmpty ? ValueTask.FromResult(true) : FlushAsync();

        async ValueTask<bool> FlushAsync()
        {
            if (Interlocked.Exchange(ref _flushing, 1) == 1)
            {
                // Another lookup is flushing: this one is a miss meanwhile.
                return false;
            }

            try
            {
                foreach (var database in _pending.Keys)
                {
                    if (!await TryInvalidateAsync(redis, database, null).ConfigureAwait(false))
                    {
                        return false;
                    }

                    _pending.TryRemove(database, out _);
                }

                return _pending.IsEmpty;
            }
            finally
            {
                Volatile.Write(ref _flushing, 0);
            }
        }
    }

    private async Task ConnectAsync()
    {
        try
        {
            var redis = await ConnectionMultiplexer.ConnectAsync(_options).ConfigureAwait(false);
            if (_stopping.IsCancellationRequested)
            {
                await redis.DisposeAsync().ConfigureAwait(false);
                return;
            }

            // The multiplexer keeps its subscriptions and renews them after a reconnect.
            redis.GetSubscriber().Subscribe(s_channel, (_, message) => OnMessage(message), CommandFlags.FireAndForget);
            _redis = redis;
            if (!redis.IsConnected)
            {
                Unreachable("not connected to " + Configuration);
            }
        }
        catch (Exception ex)
        {
            Unreachable(ex);
        }
    }

    private void OnMessage(RedisValue message)
    {
        var parts = ((string?)message ?? string.Empty).Split('\0');
        if (parts.Length < 2 || parts[0] == _instance)
        {
            return;
        }

        RemoteInvalidation?.Invoke(parts[1], parts.Length == 2 ? null : parts[2..]);
    }

    private void Reachable()
    {
        if (Volatile.Read(ref _unavailable) == 1 && Interlocked.Exchange(ref _unavailable, 0) == 1)
        {
            AvailabilityChanged?.Invoke(true, Configuration);
        }
    }

    private void Unreachable(Exception ex) => Unreachable(ex.Message);

    private void Unreachable(string reason)
    {
        if (Interlocked.Exchange(ref _unavailable, 1) == 0)
        {
            AvailabilityChanged?.Invoke(false, reason);
        }
    }

    private static string DatabaseOf(ReadOnlySpan<byte> key)
    {
        int nul = key.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? key[..nul] : key);
    }

    private static RedisKey EntryKey(ReadOnlySpan<byte> key)
    {
        var bytes = new byte[s_entryPrefix.Length + key.Length];
        s_entryPrefix.CopyTo(bytes, 0);
        key.CopyTo(bytes.AsSpan(s_entryPrefix.Length));
        return bytes;
    }

    private static RedisKey SequenceKey(string database) => "fastpool:s:" + database;

    private static RedisKey DatabaseVersionKey(string database) => "fastpool:d:" + database;

    private static RedisValue VersionPrefix(string database) => "fastpool:v:" + database + "\0";

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _connecting.ConfigureAwait(false);
        if (_redis is { } redis)
        {
            await redis.DisposeAsync().ConfigureAwait(false);
        }

        _stopping.Dispose();
    }
}
