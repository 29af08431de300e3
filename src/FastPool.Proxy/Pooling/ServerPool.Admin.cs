namespace FastPool.Proxy.Pooling;

/// <summary>What the admin console and online reload do to a pool: new settings, reconnects, retirement.</summary>
internal sealed partial class ServerPool
{
    /// <summary>Set when a reload changed what this pool's servers log in as: it only drains from then on.</summary>
    private volatile bool _retired;

    public bool Retired => _retired;

    /// <summary>
    /// Takes new settings from a reload or SET. Connections opened from now on use them; a larger pool hands
    /// the new slots to waiting clients at once, a smaller one shrinks as servers are released (see Maintain).
    /// </summary>
    public void UpdateSettings(PoolSettings settings)
    {
        Settings = settings;
        while (Volatile.Read(ref _waiterCount) > 0 && TryReserveSlot(allowReserve: false))
        {
            if (!TryHandToWaiter(null))
            {
                ReleaseSlotQuietly();
                break;
            }
        }

        DispatchIdle();
    }

    /// <summary>
    /// RECONNECT: every current connection is closed once it is idle; clients that hold one keep it until they
    /// release it, so no query is cut off.
    /// </summary>
    public void Reconnect()
    {
        BumpGeneration();
        CloseIdle();
    }

    /// <summary>
    /// A reload changed the server this pool logs in to (host, port, dbname, user, password, ...): new clients
    /// get a new pool, and this one closes each connection as it comes back, so nobody is disconnected.
    /// </summary>
    public void Retire()
    {
        _retired = true;
        Reconnect();
    }

    /// <summary>Closes the idle connections now (PAUSE and KILL do, as PgBouncer does).</summary>
    public void CloseIdle()
    {
        int count = IdleCount;
        for (int i = 0; i < count && _idle.TryTakeOldest(out var server); i++)
        {
            Close(server);
        }
    }

    /// <summary>The idle connections right now (a snapshot, for SHOW SERVERS and SHOW POOLS).</summary>
    public ServerConnection[] IdleSnapshot() => _idle.ToArray();

    /// <summary>True when the server has been idle long enough that server_check_query runs before its next use.</summary>
    public bool NeedsCheckBeforeUse(ServerConnection server) => NeedsCheck(server);
}
