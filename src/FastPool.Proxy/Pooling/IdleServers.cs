using System.Collections.Concurrent;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Pooling;

/// <summary>
/// The idle connections of one pool, lock-free: a FIFO queue, and in front of it one slot per transport loop that
/// holds the connection that loop's thread released last.
/// <para>
/// A client is served on one loop and its server connection on another unless they happen to match, and a
/// transaction that crosses loops wakes both threads: in transaction pooling on two cores, one client ran 10.6k
/// transactions a second across two loops against 13.4k on one. Taking the connection the client's own loop released
/// last keeps a lone client, or a few, on one thread and on one warm PostgreSQL backend (PgBouncer reuses the last
/// released connection too, its default server_round_robin = 0). A released connection that finds its loop's slot
/// taken pushes the older one into the queue; the queue serves whoever finds no connection of their own loop, and
/// clients waiting in line are served before either (<see cref="ServerPool.Release"/>), in their order.
/// </para>
/// </summary>
internal sealed class IdleServers
{
    // The loops' slots are 128 bytes apart, and the count is striped per loop (Metrics.StripedCounters): each loop
    // thread exchanges its own slot on every transaction, and slots or a count on one shared cache line would have
    // the cores trade it each time.
    private const int SlotSpacing = 16;

    private readonly ConcurrentQueue<ServerConnection> _queue = new();
    private readonly ServerConnection?[] _last;
    private readonly int _slots;
    private readonly Metrics.StripedCounters _count = new(1);

    /// <param name="loops">The transport's loop count; without loops (or for a connection no loop serves) there is one slot for all.</param>
    public IdleServers(int loops)
    {
        _slots = Math.Max(1, loops);
        _last = new ServerConnection?[_slots * SlotSpacing];
    }

    /// <summary>How many there are (a connection being added or taken may be counted a moment early or late).</summary>
    public int Count => (int)Math.Max(0, _count.Read(0));

    public void Add(ServerConnection server)
    {
        // Counted before it can be taken, so the count never goes below zero.
        _count.Add(0, 1);
        var older = Interlocked.Exchange(ref _last[Slot(server.Connection.LoopIndex)], server);
        if (older is not null)
        {
            _queue.Enqueue(older);
        }
    }

    /// <summary>Takes the connection the calling loop released last, else the oldest queued one, else any.</summary>
    public bool TryTake(out ServerConnection server)
    {
        int slot = Slot(ConnectionTransport.CurrentLoop);
        if (Volatile.Read(ref _last[slot]) is not null && Interlocked.Exchange(ref _last[slot], null) is { } mine)
        {
            server = mine;
        }
        else if (!_queue.TryDequeue(out server!) && !TryTakeLast(out server))
        {
            return false;
        }

        _count.Add(0, -1);
        return true;
    }

    /// <summary>The oldest first (upkeep, eviction, shutdown): the queue, then the loops' last ones.</summary>
    public bool TryTakeOldest(out ServerConnection server)
    {
        if (!_queue.TryDequeue(out server!) && !TryTakeLast(out server))
        {
            return false;
        }

        _count.Add(0, -1);
        return true;
    }

    /// <summary>Moves the loops' last ones to the back of the queue, so upkeep that goes through the queue sees them all.</summary>
    public void QueueLast()
    {
        for (int i = 0; i < _last.Length; i += SlotSpacing)
        {
            if (Volatile.Read(ref _last[i]) is not null && Interlocked.Exchange(ref _last[i], null) is { } last)
            {
                _queue.Enqueue(last);
            }
        }
    }

    /// <summary>Puts a connection back behind the others (upkeep found it still good).</summary>
    public void AddOldest(ServerConnection server)
    {
        _count.Add(0, 1);
        _queue.Enqueue(server);
    }

    /// <summary>A snapshot, for SHOW SERVERS and SHOW POOLS.</summary>
    public ServerConnection[] ToArray()
    {
        var queued = _queue.ToArray();
        var all = new List<ServerConnection>(queued.Length + _slots);
        all.AddRange(queued);
        for (int i = 0; i < _last.Length; i += SlotSpacing)
        {
            if (Volatile.Read(ref _last[i]) is { } server)
            {
                all.Add(server);
            }
        }

        return [.. all];
    }

    private int Slot(int loop) => (uint)loop < (uint)_slots ? loop * SlotSpacing : 0;

    private bool TryTakeLast(out ServerConnection server)
    {
        for (int i = 0; i < _last.Length; i += SlotSpacing)
        {
            if (Volatile.Read(ref _last[i]) is not null && Interlocked.Exchange(ref _last[i], null) is { } found)
            {
                server = found;
                return true;
            }
        }

        server = null!;
        return false;
    }
}
