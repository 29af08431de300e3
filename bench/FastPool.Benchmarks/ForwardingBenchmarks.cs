using System.Buffers;
using BenchmarkDotNet.Attributes;
using FastPool.Benchmarks.Infrastructure;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Sessions;

namespace FastPool.Benchmarks;

/// <summary>
/// The forwarding hot path: what the proxy's two pumps do to each socket read, through the proxy's own
/// <see cref="ForwardingScanner"/> (the code ClientSession runs). Sockets and sends are left out; this
/// is the per-read CPU cost FastPool adds. Expected allocation: 0 B.
/// </summary>
[MemoryDiagnoser]
public class ForwardingBenchmarks
{
    private const int StatementCount = 7;
    private const int MaxPacketSize = int.MaxValue;

    private readonly ServerProtocolState _server = new();
    private ReadOnlySequence<byte>[] _simpleClient = [];
    private ReadOnlySequence<byte>[] _simpleServer = [];
    private ReadOnlySequence<byte>[] _extendedClient = [];
    private ReadOnlySequence<byte>[] _extendedServer = [];
    private ReadOnlySequence<byte> _largeResult;
    private ForwardingScanner _scanner = new(MaxPacketSize);
    private ForwardingScanner _pooledScanner = new(MaxPacketSize);

    [GlobalSetup]
    public void Setup()
    {
        _simpleClient = Reads(i => WireSamples.ClientStatement(i, extended: false));
        _simpleServer = Reads(i => WireSamples.ServerAnswer(i, extended: false));
        _extendedClient = Reads(i => WireSamples.ClientStatement(i, extended: true));
        _extendedServer = Reads(i => WireSamples.ServerAnswer(i, extended: true));
        _largeResult = ChunkedSequence.Create(WireSamples.AccountsResult(1000), 4096);
        _scanner = new ForwardingScanner(MaxPacketSize);
        _pooledScanner = new ForwardingScanner(MaxPacketSize);
        _pooledScanner.EnablePooling(new ClassifyingInspector(), statementMode: false);
    }

    /// <summary>
    /// The same transaction in transaction pooling: every Query/Parse text also goes through the classifier that
    /// looks for SET and session state (what ClientSession does for statements that are neither), and the server
    /// scan checks for the release point.
    /// </summary>
    [Benchmark(Description = "pgbench tx, extended protocol, transaction pooling scan")]
    public long PgbenchExtendedPooled()
    {
        (_scanner, _pooledScanner) = (_pooledScanner, _scanner);
        try
        {
            return Transaction(_extendedClient, _extendedServer);
        }
        finally
        {
            (_scanner, _pooledScanner) = (_pooledScanner, _scanner);
        }
    }

    /// <summary>One pgbench TPC-B transaction, -M simple: 7 Query reads and 7 answer reads.</summary>
    [Benchmark(Baseline = true, Description = "pgbench tx, simple protocol (14 reads)")]
    public long PgbenchSimple() => Transaction(_simpleClient, _simpleServer);

    /// <summary>One pgbench TPC-B transaction, -M extended: 7 Parse/Bind/Describe/Execute/Sync reads and 7 answer reads.</summary>
    [Benchmark(Description = "pgbench tx, extended protocol (14 reads)")]
    public long PgbenchExtended() => Transaction(_extendedClient, _extendedServer);

    /// <summary>
    /// A 1000-row result (~110 KB) arriving in 4 KiB reads: bodies and headers straddle reads, so this exercises
    /// the remaining-body streaming and the re-presented partial header, as the pipe would.
    /// </summary>
    [Benchmark(Description = "1000-row result in 4 KiB reads (server to client)")]
    public long LargeResultIn4KiBReads()
    {
        var buffer = _largeResult;
        long total = buffer.Length;
        long received = 0;
        long forwarded = 0;
        var unforwarded = buffer;
        while (forwarded < total)
        {
            received = Math.Min(total, received + 4096);

            // The pipe hands back what was not consumed plus what just arrived.
            var read = unforwarded.Slice(0, received - forwarded);
            if (!_scanner.ScanFromServer(read, _server, out long forward, out _))
            {
                throw new InvalidOperationException("invalid server message");
            }

            forwarded += forward;
            unforwarded = unforwarded.Slice(forward);
        }

        _server.PendingReadyForQuery = 0;
        return forwarded;
    }

    private long Transaction(ReadOnlySequence<byte>[] client, ReadOnlySequence<byte>[] server)
    {
        long bytes = 0;
        for (int i = 0; i < StatementCount; i++)
        {
            if (_scanner.ScanFromClient(client[i], _server, out long forward, out _, out _) is not null)
            {
                throw new InvalidOperationException(_scanner.Violation);
            }

            bytes += forward;
            if (!_scanner.ScanFromServer(server[i], _server, out forward, out _))
            {
                throw new InvalidOperationException("invalid server message");
            }

            bytes += forward;
        }

        return bytes;
    }

    private sealed class ClassifyingInspector : IQueryInspector
    {
        public int Pins { get; private set; }

        public bool Inspect(in ReadOnlySequence<byte> sql, bool namedStatement)
        {
            var traits = SqlClassifier.Classify(sql.FirstSpan, out var pins);
            Pins += (int)pins + (int)traits;
            return true;
        }

        public bool InspectBind(PreparedStatements.ClientStatement? statement) => true;
    }

    private static ReadOnlySequence<byte>[] Reads(Func<int, byte[]> read)
    {
        var reads = new ReadOnlySequence<byte>[StatementCount];
        for (int i = 0; i < StatementCount; i++)
        {
            reads[i] = new ReadOnlySequence<byte>(read(i));
        }

        return reads;
    }
}
