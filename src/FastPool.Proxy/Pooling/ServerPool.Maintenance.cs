using Microsoft.Extensions.Logging;

namespace FastPool.Proxy.Pooling;

internal sealed partial class ServerPool
{
    /// <summary>
    /// Periodic upkeep (once a second): closes connections past server_idle_timeout (down to min_pool_size)
    /// or server_lifetime, and opens connections up to min_pool_size unless <paramref name="fill"/> is false
    /// (a paused database, a retired pool).
    /// </summary>
    public void Maintain(bool fill = true)
    {
        if (_closed)
        {
            return;
        }

        long now = _time.GetTimestamp();
        var settings = Settings;

        // Every idle connection is looked at, the loops' last ones too (IdleServers).
        _idle.QueueLast();
        int count = IdleCount;
        for (int i = 0; i < count && _idle.TryTakeOldest(out var server); i++)
        {
            bool idleTooLong = settings.IdleTimeout > TimeSpan.Zero
                && _time.GetElapsedTime(server.LastUsedTicks, now) > settings.IdleTimeout
                && TotalCount > settings.MinSize;
            if (idleTooLong || !IsReusable(server, now))
            {
                Close(server);
            }
            else
            {
                _idle.AddOldest(server);
            }
        }

        // A reload or SET made the pool smaller: shed idle connections above the new ceiling.
        while (TotalCount > settings.Size + settings.ReserveSize && _idle.TryTakeOldest(out var extra))
        {
            Close(extra);
        }

        if (Volatile.Read(ref _waiterCount) > 0)
        {
            DispatchIdle();
            TryWakeWithSlot();
            MakeRoomUnderSharedLimits();
        }

        while (fill && TotalCount < settings.MinSize && TryReserveSlot(allowReserve: false))
        {
            _ = FillAsync();
        }
    }

    /// <summary>
    /// When this pool is below its own size but a max_db_connections / max_user_connections limit is full,
    /// idle connections of other pools under that limit are closed so the slot can come here.
    /// </summary>
    private void MakeRoomUnderSharedLimits()
    {
        if (TotalCount < Settings.Size && Volatile.Read(ref _waiterCount) > 0)
        {
            _manager.EvictIdleFor(this);
        }
    }

    private async Task FillAsync()
    {
        try
        {
            var server = await OpenReservedAsync(CancellationToken.None).ConfigureAwait(false);
            Release(server);
        }
        catch (Exception ex)
        {
            // OpenReservedAsync already logged it and freed the slot; min_pool_size retries on the next tick.
            _logger.LogDebug(ex, "min_pool_size fill failed for {Pool}", Key);
        }
    }

    /// <summary>Closes every idle connection and refuses new work; active connections close when released.</summary>
    public void Shutdown()
    {
        _closed = true;
        while (_idle.TryTakeOldest(out var server))
        {
            Close(server);
        }

        ReleaseAllWaiters();
    }
}
