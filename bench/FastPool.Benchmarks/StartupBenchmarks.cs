using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using BenchmarkDotNet.Attributes;
using FastPool.Benchmarks.Infrastructure;
using FastPool.Protocol;

namespace FastPool.Benchmarks;

/// <summary>
/// <see cref="StartupPacket.TryParse"/> on the first packet of a connection (55.7 StartupMessage, SSLRequest).
/// It runs once per client connection, not per message, and keeps the parameters as strings by design, so it
/// allocates: the figure is a budget (the packet object, its lists and one string per name and value), not 0 B.
/// </summary>
[MemoryDiagnoser]
public class StartupBenchmarks
{
    private ReadOnlySequence<byte> _npgsql;
    private ReadOnlySequence<byte> _npgsqlSplit;
    private ReadOnlySequence<byte> _sslRequest;

    [GlobalSetup]
    public void Setup()
    {
        // What Npgsql sends (psql's is similar, with fewer parameters).
        var npgsql = Startup(
            ("user", "postgres"),
            ("database", "postgres"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO"),
            ("application_name", "fastpool-load"),
            ("search_path", "public"));
        _npgsql = new ReadOnlySequence<byte>(npgsql);

        // The packet split in two reads mid-parameter, as a slow client or a small first read delivers it.
        _npgsqlSplit = ChunkedSequence.Create(npgsql, npgsql.Length / 2);

        var ssl = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(ssl, 8);
        BinaryPrimitives.WriteInt32BigEndian(ssl.AsSpan(4), StartupCodes.SslRequest);
        _sslRequest = new ReadOnlySequence<byte>(ssl);
    }

    [Benchmark(Baseline = true, Description = "StartupMessage, 6 parameters, 1 segment")]
    public StartupPacket? Startup() => Parse(_npgsql);

    [Benchmark(Description = "StartupMessage, 6 parameters, 2 segments")]
    public StartupPacket? StartupSplit() => Parse(_npgsqlSplit);

    [Benchmark(Description = "SSLRequest")]
    public StartupPacket? SslRequest() => Parse(_sslRequest);

    private static StartupPacket? Parse(in ReadOnlySequence<byte> buffer) =>
        StartupPacket.TryParse(buffer, out var packet, out _) == StartupParseStatus.Ok ? packet : throw new InvalidOperationException("bad packet");

    private static byte[] Startup(params (string Name, string Value)[] parameters)
    {
        // Int32 length, Int32 196608 (protocol 3.0), name/value C strings, a closing zero byte.
        var body = new List<byte>();
        foreach (var (name, value) in parameters)
        {
            body.AddRange(Encoding.UTF8.GetBytes(name));
            body.Add(0);
            body.AddRange(Encoding.UTF8.GetBytes(value));
            body.Add(0);
        }

        body.Add(0);
        var packet = new byte[8 + body.Count];
        BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(4), StartupCodes.ProtocolVersion3);
        body.CopyTo(packet, 8);
        return packet;
    }
}
