using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Topology;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// Invalidation for writes that do not pass through FastPool: per server database that has cached results, one
/// connection of its own LISTENs on <see cref="Channel"/>, where the statement-level triggers that
/// <c>fastpool cache install-triggers</c> creates send the written table's name at commit (PostgreSQL docs: NOTIFY,
/// "notifications are delivered between transactions", so a rolled-back write sends nothing). A listener that
/// loses its connection reconnects, and then drops the database's entries: notifications sent meanwhile are lost.
/// </summary>
internal sealed class CacheListener : IAsyncDisposable
{
    /// <summary>The notification channel the triggers use.</summary>
    public const string Channel = "fastpool_cache_invalidate";

    private static readonly TimeSpan s_retry = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_connectTimeout = TimeSpan.FromSeconds(10);

    private readonly ProxyRuntime _runtime;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<string, Task> _listeners = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _asking = new(StringComparer.Ordinal);

    public CacheListener(ProxyRuntime runtime)
    {
        _runtime = runtime;
    }

    /// <summary>Starts listening for <paramref name="cacheDatabase"/> unless a listener already does.</summary>
    public void Ensure(string cacheDatabase, DatabaseConfig entry, string databaseName)
    {
        if (_listeners.ContainsKey(cacheDatabase) || _stopping.IsCancellationRequested)
        {
            return;
        }

        _listeners.GetOrAdd(cacheDatabase, key => Task.Run(() => ListenAsync(key, entry, databaseName)));
    }

    /// <summary>
    /// Session pooling: the session's own server is not free for the catalog question (its server pump reads it), so
    /// one connection of the listener's kind asks, in the background; the request that found the names unknown is
    /// not cached, the next one is. One question per database at a time.
    /// </summary>
    public void AskCatalog(string cacheDatabase, DatabaseConfig entry, string databaseName, List<string> names)
    {
        if (_stopping.IsCancellationRequested || !_asking.TryAdd(cacheDatabase, 0))
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            ServerConnection? server = null;
            try
            {
                server = await ConnectAsync(entry, databaseName, listen: false, _stopping.Token).ConfigureAwait(false);
                if (_runtime.Cache is { } cache)
                {
                    await ClientSession.AskCatalogOnAsync(server, new MessageBuilder(), cache, cacheDatabase, names).ConfigureAwait(false);
                }
            }
            catch (Exception)
            {
                // Not answered: the names stay unknown and are asked about again by a later request.
            }
            finally
            {
                if (server is not null)
                {
                    await server.TerminateAndCloseAsync().ConfigureAwait(false);
                }

                _asking.TryRemove(cacheDatabase, out _);
            }
        });
    }

    private async Task ListenAsync(string cacheDatabase, DatabaseConfig entry, string databaseName)
    {
        var ct = _stopping.Token;
        bool connectedBefore = false;
        while (!ct.IsCancellationRequested)
        {
            ServerConnection? server = null;
            try
            {
                server = await ConnectAsync(entry, databaseName, listen: true, ct).ConfigureAwait(false);
                if (connectedBefore)
                {
                    // Notifications sent while no one listened are lost: what they would have removed goes now.
                    _runtime.Cache?.InvalidateDatabase(cacheDatabase, share: false);
                }

                connectedBefore = true;
                await ReceiveAsync(server, cacheDatabase, ct).ConfigureAwait(false);
            }
            catch (Exception) when (!ct.IsCancellationRequested)
            {
                // The server went away or refused; tried again shortly.
            }
            catch (Exception)
            {
                return;
            }
            finally
            {
                if (server is not null)
                {
                    await server.TerminateAndCloseAsync().ConfigureAwait(false);
                }
            }

            try
            {
                await Task.Delay(s_retry, _runtime.Time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<ServerConnection> ConnectAsync(DatabaseConfig entry, string databaseName, bool listen, CancellationToken ct)
    {
        var config = _runtime.Config;
        var topology = _runtime.GetTopology(entry);
        var node = topology.Primary ?? topology.Nodes[0];
        var login = NodeProbe.CheckLogin(config, entry);
        string dbName = entry.DbName ?? databaseName;
        var server = await NodeProbe.OpenAsync(_runtime, config, entry, node, login, dbName, s_connectTimeout, ct).ConfigureAwait(false);
        if (!listen)
        {
            return server;
        }

        try
        {
            var error = await MessageIo.RunQueryAsync(server, new MessageBuilder(), "LISTEN " + Channel, ct).ConfigureAwait(false);
            if (error is not null)
            {
                throw new ServerException(error.Code, error.Message, "ERROR");
            }
        }
        catch (Exception)
        {
            await server.TerminateAndCloseAsync().ConfigureAwait(false);
            throw;
        }

        return server;
    }

    private async Task ReceiveAsync(ServerConnection server, string cacheDatabase, CancellationToken ct)
    {
        while (true)
        {
            var (code, body) = await MessageIo.ReadMessageAsync(server.Connection.Input, ct).ConfigureAwait(false);
            if (code != (byte)BackendCode.NotificationResponse
                || !BackendMessages.TryReadNotificationResponse(new ReadOnlySequence<byte>(body), out _, out _, out var payload))
            {
                continue;
            }

            // The payload is the written table's name, as the trigger's TG_TABLE_NAME gives it (unquoted, exact case).
            string table = Encoding.UTF8.GetString(payload.ToArray());
            if (_runtime.Cache is { } cache)
            {
                cache.Invalidate(cacheDatabase, [table]);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_listeners.Values).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Stopping: a listener that does not end in time is left to the process exit.
        }

        _stopping.Dispose();
    }
}
