using System.Collections.Concurrent;
using FastPool.Proxy.Metrics;

namespace FastPool.Proxy;

/// <summary>
/// Process-wide counters: the client count, and the traffic counters per database name and user (SHOW STATS
/// sums a database's users; /metrics shows each pool). A session bumps only its own pool's counters, so the
/// totals are sums taken when read, never a second Interlocked per batch on the hot path.
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

    /// <summary>The counters of one (database, user) pair as clients name them: what a session adds to.</summary>
    public PoolTraffic For(string database, string user) => For(database).For(user);

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

    /// <summary>
    /// The last stats_period over all databases: each rate summed, each mean duration (transaction, query, wait for a
    /// server) weighted by its database's share of those events. What SHOW TOTALS's avg_* rows and the stats log line say.
    /// </summary>
    public StatsSnapshot CombinedAverages()
    {
        long xacts = 0, queries = 0, bytesIn = 0, bytesOut = 0, assigned = 0, xactTime = 0, queryTime = 0, waitTime = 0;
        foreach (var db in _databases.Values)
        {
            var a = db.Averages;
            xacts += a.Transactions;
            queries += a.Queries;
            bytesIn += a.BytesIn;
            bytesOut += a.BytesOut;
            assigned += a.Assignments;
            xactTime += a.TransactionMicroseconds * a.Transactions;
            queryTime += a.QueryMicroseconds * a.Queries;
            waitTime += a.WaitMicroseconds * a.Assignments;
        }

        return new StatsSnapshot(xacts, queries, bytesIn, bytesOut, assigned > 0 ? waitTime / assigned : 0, assigned)
        {
            TransactionMicroseconds = xacts > 0 ? xactTime / xacts : 0,
            QueryMicroseconds = queries > 0 ? queryTime / queries : 0,
        };
    }

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
/// Traffic of one database: the sum over its users' <see cref="PoolTraffic"/>, taken when read (SHOW STATS is
/// per database), plus the per-period averages.
/// </summary>
internal sealed class DatabaseStats(string name)
{
    private readonly ConcurrentDictionary<string, PoolTraffic> _users = new(StringComparer.Ordinal);
    private StatsSnapshot _last;

    public string Name { get; } = name;

    public PoolTraffic For(string user) =>
        _users.TryGetValue(user, out var traffic) ? traffic : _users.GetOrAdd(user, static (u, db) => new PoolTraffic(db, u), Name);

    public IEnumerable<PoolTraffic> Users => _users.Values;

    public long Transactions => Sum(static u => u.Transactions);

    public long Queries => Sum(static u => u.Queries);

    public long BytesIn => Sum(static u => u.BytesIn);

    public long BytesOut => Sum(static u => u.BytesOut);

    /// <summary>Total time clients waited for a server, in microseconds (PgBouncer's total_wait_time).</summary>
    public long WaitMicroseconds => Sum(static u => u.WaitMicroseconds);

    /// <summary>How many times a client was given a server.</summary>
    public long Assignments => Sum(static u => u.Assignments);

    /// <summary>Time spent in transactions, in microseconds (PgBouncer's total_xact_time).</summary>
    public long TransactionMicroseconds => Sum(static u => u.TransactionTime.SumMicroseconds);

    /// <summary>Time spent in queries, in microseconds (PgBouncer's total_query_time).</summary>
    public long QueryMicroseconds => Sum(static u => u.QueryTime.SumMicroseconds);

    /// <summary>Per-second rates (and the mean wait, transaction and query times) over the last completed stats_period.</summary>
    public StatsSnapshot Averages { get; private set; }

    internal void Sample(TimeSpan period)
    {
        var now = new StatsSnapshot(Transactions, Queries, BytesIn, BytesOut, WaitMicroseconds, Assignments)
        {
            TransactionMicroseconds = TransactionMicroseconds,
            QueryMicroseconds = QueryMicroseconds,
            TimedTransactions = Sum(static u => u.TransactionTime.Count),
            TimedQueries = Sum(static u => u.QueryTime.Count),
        };
        var last = _last;
        double secs = period.TotalSeconds > 0 ? period.TotalSeconds : 1;
        long assigned = now.Assignments - last.Assignments;
        long xacts = now.TimedTransactions - last.TimedTransactions;
        long queries = now.TimedQueries - last.TimedQueries;
        Averages = new StatsSnapshot(
            (long)((now.Transactions - last.Transactions) / secs),
            (long)((now.Queries - last.Queries) / secs),
            (long)((now.BytesIn - last.BytesIn) / secs),
            (long)((now.BytesOut - last.BytesOut) / secs),
            assigned > 0 ? (now.WaitMicroseconds - last.WaitMicroseconds) / assigned : 0,
            (long)(assigned / secs))
        {
            // Like PgBouncer's avg_xact_time / avg_query_time: the mean duration, not a rate.
            TransactionMicroseconds = xacts > 0 ? (now.TransactionMicroseconds - last.TransactionMicroseconds) / xacts : 0,
            QueryMicroseconds = queries > 0 ? (now.QueryMicroseconds - last.QueryMicroseconds) / queries : 0,
        };
        _last = now;
    }

    private long Sum(Func<PoolTraffic, long> value)
    {
        long total = 0;
        foreach (var user in _users.Values)
        {
            total += value(user);
        }

        return total;
    }
}

/// <summary>One set of counter values: totals, or per-second averages over a stats_period.</summary>
internal readonly record struct StatsSnapshot(long Transactions, long Queries, long BytesIn, long BytesOut, long WaitMicroseconds, long Assignments)
{
    public long TransactionMicroseconds { get; init; }

    public long QueryMicroseconds { get; init; }

    public long TimedTransactions { get; init; }

    public long TimedQueries { get; init; }
}
