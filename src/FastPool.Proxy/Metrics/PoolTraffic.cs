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
    private long _transactions;
    private long _queries;
    private long _bytesIn;
    private long _bytesOut;
    private long _waitMicroseconds;
    private long _assignments;

    public string Database { get; } = database;

    public string User { get; } = user;

    public long Transactions => Interlocked.Read(ref _transactions);

    public long Queries => Interlocked.Read(ref _queries);

    public long BytesIn => Interlocked.Read(ref _bytesIn);

    public long BytesOut => Interlocked.Read(ref _bytesOut);

    /// <summary>Total time clients waited for a server, in microseconds (PgBouncer's total_wait_time).</summary>
    public long WaitMicroseconds => Interlocked.Read(ref _waitMicroseconds);

    /// <summary>How many times a client was given a server.</summary>
    public long Assignments => Interlocked.Read(ref _assignments);

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
        long micros = Math.Max(0, waited.Ticks / TimeSpan.TicksPerMicrosecond);
        Interlocked.Add(ref _waitMicroseconds, micros);
        Interlocked.Increment(ref _assignments);
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
