using FastPool.Protocol;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

internal sealed partial class ClientSession
{
    // Bound on how long cleaning a connection for the next client may take before it is closed instead.
    private static readonly TimeSpan s_resetTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Makes a server connection safe for the next client: rolls back an open transaction, runs
    /// server_reset_query, and only then returns it to the pool. A connection whose state is not known
    /// (mid-query, mid-COPY, unsynced extended messages, I/O error) is closed instead.
    /// </summary>
    private async Task ReleaseAsync(ServerConnection server)
    {
        _server = null;
        var pool = server.Pool;
        if (!IsAtBoundary(server))
        {
            pool.Close(server);
            return;
        }

        try
        {
            using var cts = new CancellationTokenSource(s_resetTimeout);
            ErrorFields? error = null;
            if (server.TransactionStatus != TransactionStatus.Idle)
            {
                // DISCARD ALL cannot run inside a transaction block, so the rollback goes first, on its own.
                error = await MessageIo.RunQueryAsync(server, _context.Builder, "ROLLBACK", cts.Token).ConfigureAwait(false);
            }

            // In the pooling modes the reset query runs only for a pinned client (its session state cannot be
            // followed) or with server_reset_query_always, as PgBouncer; settings are carried as differences.
            var reset = pool.Settings.ResetQuery;
            bool runReset = _mode == Configuration.PoolMode.Session || _pinned != Configuration.PinReasons.None || _context.Config.ServerResetQueryAlways;
            if (error is null && reset.Length > 0 && runReset)
            {
                error = await MessageIo.RunQueryAsync(server, _context.Builder, reset, cts.Token).ConfigureAwait(false);
                var traits = SqlClassifier.Classify(System.Text.Encoding.UTF8.GetBytes(reset), out _);
                if ((traits & QueryTraits.ResetAll) != 0)
                {
                    server.AppliedSettings.Clear();
                    server.AppliedSettingsChanged();
                }

                // The shared prepared statements are gone with it; otherwise they stay for the next clients.
                if ((traits & (QueryTraits.DiscardAll | QueryTraits.DeallocateAll)) != 0)
                {
                    server.Protocol.ForgetPrepared();
                }
            }

            if (error is not null || server.TransactionStatus != TransactionStatus.Idle)
            {
                Log.ServerClosed(_runtime.Logger, server.ToString(), "reset failed: " + (error?.Message ?? "still in a transaction"));
                pool.Close(server);
                return;
            }
        }
        catch (Exception ex)
        {
            Log.ServerClosed(_runtime.Logger, server.ToString(), "reset failed: " + ServerConnector.Describe(ex));
            pool.Close(server);
            return;
        }

        pool.Release(server);
    }
}
