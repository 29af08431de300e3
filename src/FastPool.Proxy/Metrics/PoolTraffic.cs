using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace FastPool.Proxy.Metrics;

/// <summary>Counts errors by SQLSTATE class, as the forwarding scanner reads them (see <see cref="ErrorClassSniffer"/>).</summary>
internal interface IErrorClassCounter
{
    /// <summary>An error of class <paramref name="first"/><paramref name="second"/> (ASCII digits or capitals).</summary>
    void CountClass(byte first, byte second);

    /// <summary>An error whose SQLSTATE could not be read.</summary>
    void CountUnknown();
}

/// <summary>
/// Traffic of one (database, user) pair, as clients name them. Pumps add once per read batch, not per message,
/// so the Interlocked traffic stays far below the message rate. Durations go into fixed-bucket histograms.
/// </summary>
internal sealed class PoolTraffic(string database, string user) : IErrorClassCounter
{
    /// <summary>The class label of an ErrorResponse whose SQLSTATE could not be read.</summary>
    public const string UnknownClass = "??";

    private readonly ConcurrentDictionary<string, StrongBox<long>> _errors = new(StringComparer.Ordinal);
    private const int TransactionsCounter = 0;
    private const int QueriesCounter = 1;
    private const int BytesInCounter = 2;
    private const int BytesOutCounter = 3;
    private const int WaitCounter = 4;
    private const int AssignmentsCounter = 5;

    // Every transaction adds to these, from both directions' loop threads: striped, so cores do not trade the line.
    private readonly StripedCounters _counters = new(6);

    public string Database { get; } = database;

    public string User { get; } = user;

    public long Transactions => _counters.Read(TransactionsCounter);

    public long Queries => _counters.Read(QueriesCounter);

    public long BytesIn => _counters.Read(BytesInCounter);

    public long BytesOut => _counters.Read(BytesOutCounter);

    /// <summary>Total time clients waited for a server, in microseconds (PgBouncer's total_wait_time).</summary>
    public long WaitMicroseconds => _counters.Read(WaitCounter);

    /// <summary>How many times a client was given a server.</summary>
    public long Assignments => _counters.Read(AssignmentsCounter);

    public LatencyHistogram WaitTime { get; } = new();

    /// <summary>From a client's first query until the server is idle again (ReadyForQuery 'I').</summary>
    public LatencyHistogram TransactionTime { get; } = new();

    /// <summary>From a client's query until its last ReadyForQuery: one round trip (a pipelined batch counts once).</summary>
    public LatencyHistogram QueryTime { get; } = new();

    /// <summary>Errors clients were sent, by SQLSTATE class (the first two characters), sorted by class.</summary>
    public KeyValuePair<string, long>[] ErrorsByClass() =>
        [.. _errors.Select(kv => new KeyValuePair<string, long>(kv.Key, Interlocked.Read(ref kv.Value.Value))).OrderBy(kv => kv.Key, StringComparer.Ordinal)];

    public void AddIn(long bytes, int queries)
    {
        int stripe = _counters.Stripe;
        _counters.Add(stripe, BytesInCounter, bytes);
        if (queries > 0)
        {
            _counters.Add(stripe, QueriesCounter, queries);
        }
    }

    public void AddOut(long bytes, int transactions)
    {
        int stripe = _counters.Stripe;
        _counters.Add(stripe, BytesOutCounter, bytes);
        if (transactions > 0)
        {
            _counters.Add(stripe, TransactionsCounter, transactions);
        }
    }

    public void AddWait(TimeSpan waited)
    {
        long micros = Math.Max(0, waited.Ticks / TimeSpan.TicksPerMicrosecond);
        int stripe = _counters.Stripe;
        _counters.Add(stripe, WaitCounter, micros);
        _counters.Add(stripe, AssignmentsCounter, 1);
        WaitTime.Observe(micros);
    }

    /// <summary>An error FastPool itself sent (query_wait_timeout, shutdown, a failed server login, ...).</summary>
    public void CountError(string sqlState) => CountClass(sqlState.Length >= 2 ? sqlState[..2] : UnknownClass);

    public void CountClass(byte first, byte second) => CountClass(ClassName(first, second));

    public void CountUnknown() => CountClass(UnknownClass);

    private void CountClass(string sqlClass)
    {
        var box = _errors.TryGetValue(sqlClass, out var found) ? found : _errors.GetOrAdd(sqlClass, static _ => new StrongBox<long>());
        Interlocked.Increment(ref box.Value);
    }

    // Errors are rare next to queries, but a string per error would still be garbage: each class name is made once.
    private static readonly string?[] s_classNames = new string?[36 * 36];

    private static string ClassName(byte a, byte b)
    {
        int index = (Digit(a) * 36) + Digit(b);
        return s_classNames[index] ??= string.Create(2, (a, b), static (span, s) =>
        {
            span[0] = (char)s.a;
            span[1] = (char)s.b;
        });
    }

    private static int Digit(byte c) => c <= (byte)'9' ? c - '0' : c - 'A' + 10;
}
