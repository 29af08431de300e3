using System.Collections.Concurrent;

namespace FastPool.Proxy;

/// <summary>
/// Process-wide counters: the client count, and the traffic counters per database name (SHOW STATS is per
/// database). A session bumps only its own database's counters, so the totals are sums taken when read,
/// never a second Interlocked per batch on the hot path.
/// </summary>
internal sealed class ProxyStats
{
    private readonly ConcurrentDictionary<string, DatabaseStats> _databases = new(StringComparer.Ordinal);
    private int _clients;
    private int _pinnedClients;

    public long Transactions => Sum(static d => d.Transactions);

    public long Queries => Sum(static d => d.Queries);

    public long BytesIn => Sum(static d => d.BytesIn);

    public long BytesOut => Sum(static d => d.BytesOut);

    public int Clients => Volatile.Read(ref _clients);

    /// <summary>The counters of one database name (as clients name it), created on first use.</summary>
    public DatabaseStats For(string database) =>
        _databases.TryGetValue(database, out var stats) ? stats : _databases.GetOrAdd(database, static name => new DatabaseStats(name));

    public IEnumerable<DatabaseStats> Databases => _databases.Values;

    /// <summary>Clients that keep their server in transaction/statement pooling (LISTEN, temp tables, ...).</summary>
    public int PinnedClients => Volatile.Read(ref _pinnedClients);

    public void PinnedChanged(bool pinned)
    {
        if (pinned)
        {
            Interlocked.Increment(ref _pinnedClients);
        }
        else
        {
            Interlocked.Decrement(ref _pinnedClients);
        }
    }

    public int ClientOpened() => Interlocked.Increment(ref _clients);

    public void ClientClosed() => Interlocked.Decrement(ref _clients);

    /// <summary>Closes a stats_period: every database's averages become the rates over the period just ended.</summary>
    public void Sample(TimeSpan period)
    {
        foreach (var db in _databases.Values)
        {
            db.Sample(period);
        }
    }

    private long Sum(Func<DatabaseStats, long> value)
    {
        long total = 0;
        foreach (var db in _databases.Values)
        {
            total += value(db);
        }

        return total;
    }
}

/// <summary>
/// Traffic of one database. Pumps add once per read batch, not per message, so the Interlocked traffic stays
/// far below the message rate.
/// </summary>
internal sealed class DatabaseStats(string name)
{
    private long _transactions;
    private long _queries;
    private long _bytesIn;
    private long _bytesOut;
    private long _waitMicroseconds;
    private long _assignments;
    private StatsSnapshot _last;

    public string Name { get; } = name;

    public long Transactions => Interlocked.Read(ref _transactions);

    public long Queries => Interlocked.Read(ref _queries);

    public long BytesIn => Interlocked.Read(ref _bytesIn);

    public long BytesOut => Interlocked.Read(ref _bytesOut);

    /// <summary>Total time clients waited for a server, in microseconds (PgBouncer's total_wait_time).</summary>
    public long WaitMicroseconds => Interlocked.Read(ref _waitMicroseconds);

    /// <summary>How many times a client was given a server.</summary>
    public long Assignments => Interlocked.Read(ref _assignments);

    /// <summary>Per-second rates (and the mean wait) over the last completed stats_period.</summary>
    public StatsSnapshot Averages { get; private set; }

    public void AddIn(long bytes, int queries)
    {
        Interlocked.Add(ref _bytesIn, bytes);
        if (queries > 0)
        {
            Interlocked.Add(ref _queries, queries);
        }
    }

    public void AddOut(long bytes, int transactions)
    {
        Interlocked.Add(ref _bytesOut, bytes);
        if (transactions > 0)
        {
            Interlocked.Add(ref _transactions, transactions);
        }
    }

    public void AddWait(TimeSpan waited)
    {
        Interlocked.Add(ref _waitMicroseconds, (long)waited.TotalMicroseconds);
        Interlocked.Increment(ref _assignments);
    }

    internal void Sample(TimeSpan period)
    {
        var now = new StatsSnapshot(Transactions, Queries, BytesIn, BytesOut, WaitMicroseconds, Assignments);
        var last = _last;
        double secs = period.TotalSeconds > 0 ? period.TotalSeconds : 1;
        long assigned = now.Assignments - last.Assignments;
        Averages = new StatsSnapshot(
            (long)((now.Transactions - last.Transactions) / secs),
            (long)((now.Queries - last.Queries) / secs),
            (long)((now.BytesIn - last.BytesIn) / secs),
            (long)((now.BytesOut - last.BytesOut) / secs),
            assigned > 0 ? (now.WaitMicroseconds - last.WaitMicroseconds) / assigned : 0,
            (long)(assigned / secs));
        _last = now;
    }
}

/// <summary>One set of counter values: totals, or per-second averages over a stats_period.</summary>
internal readonly record struct StatsSnapshot(long Transactions, long Queries, long BytesIn, long BytesOut, long WaitMicroseconds, long Assignments);
