using System.Buffers;
using System.Text;
using FastPool.Protocol;
using FastPool.Proxy.Metrics;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Sessions;

namespace FastPool.Proxy.Tests.Metrics;

/// <summary>The forwarding scanner counts server errors by SQLSTATE class however the bytes are split into reads.</summary>
public class ErrorClassCountingTests
{
    private static byte[] Msg(char code, string body)
    {
        var b = new MessageBuilder();
        b.StartMessage((byte)code).WriteBytes(Encoding.UTF8.GetBytes(body)).EndMessage();
        return b.Written.ToArray();
    }

    private static readonly byte[] s_stream =
    [
        .. Msg('E', "SERROR\0VERROR\0C22012\0Mdivision by zero\0\0"),
        .. Msg('Z', "I"),
        .. Msg('E', "SFEHLER\0VERROR\0C42P01\0M" + new string('x', 5000) + "\0\0"),
        .. Msg('Z', "I"),
        .. Msg('N', "SNOTICE\0VNOTICE\0C00000\0Mnot an error\0\0"),
        .. Msg('E', "SERROR\0Mno code at all\0\0"),
        .. Msg('Z', "I"),
    ];

    [Fact]
    public void Errors_are_counted_by_class_for_every_split_of_the_reads()
    {
        for (int split = 1; split < s_stream.Length; split++)
        {
            var counts = Run([s_stream[..split], s_stream[split..]]);
            Assert.True(Sorted(counts) == "22=1,42=1,??=1", $"split at {split}: {Sorted(counts)}");
        }
    }

    [Fact]
    public void Errors_are_counted_when_the_bytes_arrive_one_at_a_time()
    {
        var counts = Run([.. s_stream.Select(b => new[] { b })]);
        Assert.Equal("22=1,42=1,??=1", Sorted(counts));
    }

    [Fact]
    public void Nothing_is_counted_without_a_counter()
    {
        var scanner = new ForwardingScanner(int.MaxValue);
        var state = new ServerProtocolState();
        Assert.True(scanner.ScanFromServer(new ReadOnlySequence<byte>(s_stream), state, out long forward, out int transactions));
        Assert.Equal(s_stream.Length, forward);
        Assert.Equal(3, transactions);
        Assert.Equal(3, state.Errors);
    }

    [Fact]
    public void A_fatal_error_is_noticed_for_every_split_of_the_reads_and_an_ordinary_one_is_not()
    {
        // The localized S says nothing to FastPool: V (never localized) does.
        var fatal = Msg('E', "SSCHWERWIEGEND\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0");
        byte[] stream = [.. Msg('E', "SERROR\0VERROR\0C22012\0Mdivision by zero\0\0"), .. Msg('Z', "I"), .. fatal];
        int fatalAt = stream.Length - fatal.Length;

        // Every split, including one inside the V field's value.
        for (int split = 1; split < stream.Length; split++)
        {
            var state = ScanInTwo(stream, split, out var before);
            Assert.True(state.EndingWithFatal, $"split at {split}: the FATAL error was not noticed");
            Assert.False(split <= fatalAt && before, $"split at {split}: noticed before the FATAL error came");
        }

        Assert.False(ScanInTwo(s_stream, s_stream.Length / 2, out _).EndingWithFatal, "ERROR responses do not end the connection");
    }

    /// <summary>Scans <paramref name="stream"/> in two reads split at <paramref name="split"/>; <paramref name="afterFirst"/> is the flag after the first.</summary>
    private static ServerProtocolState ScanInTwo(byte[] stream, int split, out bool afterFirst)
    {
        var scanner = new ForwardingScanner(int.MaxValue);
        scanner.CountErrorsIn(new PoolTraffic("db", "user"));
        var state = new ServerProtocolState();
        Assert.True(scanner.ScanFromServer(new ReadOnlySequence<byte>(stream[..split]), state, out long forward, out _));
        afterFirst = state.EndingWithFatal;
        Assert.True(scanner.ScanFromServer(new ReadOnlySequence<byte>(stream[(int)forward..]), state, out long rest, out _));
        Assert.Equal(stream.Length, forward + rest);
        return state;
    }

    /// <summary>Feeds the reads as a pump does: what the scanner did not forward is scanned again with the next read.</summary>
    private static (string Class, long Count)[] Run(byte[][] reads)
    {
        var traffic = new PoolTraffic("db", "user");
        var scanner = new ForwardingScanner(int.MaxValue);
        scanner.CountErrorsIn(traffic);
        var state = new ServerProtocolState();
        var pending = new List<byte>();
        long forwarded = 0;
        foreach (var read in reads)
        {
            pending.AddRange(read);
            Assert.True(scanner.ScanFromServer(new ReadOnlySequence<byte>(pending.ToArray()), state, out long forward, out _));
            pending.RemoveRange(0, (int)forward);
            forwarded += forward;
        }

        Assert.Equal(s_stream.Length, forwarded);
        Assert.Equal(3, state.Errors);
        return [.. traffic.ErrorsByClass().Select(kv => (kv.Key, kv.Value))];
    }

    private static string Sorted((string Class, long Count)[] counts) =>
        string.Join(",", counts.Select(c => c.Class + "=" + c.Count).Order(StringComparer.Ordinal));
}
