using System.Buffers;
using FastPool.Protocol;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Sessions;

namespace FastPool.Proxy.Tests.Sessions;

public class ForwardingScannerTests
{
    private static byte[] Msg(char code, params byte[] body)
    {
        var b = new MessageBuilder();
        b.StartMessage((byte)code).WriteBytes(body).EndMessage();
        return b.Written.ToArray();
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private static ReadOnlySequence<byte> Seq(byte[] bytes) => new(bytes);

    private static byte[] Query(string sql) => Msg('Q', System.Text.Encoding.UTF8.GetBytes(sql + "\0"));

    [Fact]
    public void Client_query_and_sync_are_counted_until_ready_for_query()
    {
        var scanner = new ForwardingScanner(int.MaxValue);
        var state = new ServerProtocolState();
        var client = Concat(Msg('Q', "select 1\0"u8.ToArray()), Msg('P', new byte[8]), Msg('B', new byte[10]), Msg('E', new byte[5]), Msg('S'));

        var exit = scanner.ScanFromClient(Seq(client), state, out long forward, out long consumed, out int queries);

        Assert.Null(exit);
        Assert.Equal(client.Length, forward);
        Assert.Equal(client.Length, consumed);
        Assert.Equal(2, queries);
        Assert.Equal(2, state.PendingReadyForQuery);
        Assert.False(state.AtMessageBoundary);

        var server = Concat(Msg('T', new byte[6]), Msg('D', new byte[10]), Msg('C', "SELECT 1\0"u8.ToArray()), Msg('Z', (byte)'I'), Msg('1'), Msg('2'), Msg('C', "SELECT 1\0"u8.ToArray()), Msg('Z', (byte)'T'));
        Assert.True(scanner.ScanFromServer(Seq(server), state, out long sent, out int transactions));
        Assert.Equal(server.Length, sent);
        Assert.Equal(1, transactions);
        Assert.Equal(TransactionStatus.InTransaction, state.TransactionStatus);
        Assert.True(state.AtMessageBoundary);
    }

    [Fact]
    public void Unsynced_extended_messages_leave_the_server_mid_protocol()
    {
        var scanner = new ForwardingScanner(int.MaxValue);
        var state = new ServerProtocolState();
        scanner.ScanFromClient(Seq(Concat(Msg('P', new byte[8]), Msg('H'))), state, out _, out _, out _);
        Assert.False(state.AtMessageBoundary);
    }

    [Fact]
    public void Terminate_is_not_forwarded()
    {
        var scanner = new ForwardingScanner(int.MaxValue);
        var query = Msg('Q', "select 1\0"u8.ToArray());
        var all = Concat(query, Msg('X'));
        var exit = scanner.ScanFromClient(Seq(all), new ServerProtocolState(), out long forward, out long consumed, out _);
        Assert.Equal(PumpExit.Terminate, exit);
        Assert.Equal(query.Length, forward);
        Assert.Equal(all.Length, consumed);
    }

    [Fact]
    public void Oversized_and_bad_lengths_and_unknown_types_are_violations()
    {
        var big = Msg('Q', new byte[2000]);
        var scanner = new ForwardingScanner(1024);
        Assert.Equal(PumpExit.ClientProtocolViolation, scanner.ScanFromClient(Seq(big), new ServerProtocolState(), out long forward, out _, out _));
        Assert.Equal(0, forward);
        Assert.Contains("max_packet_size", scanner.Violation);

        scanner = new ForwardingScanner(int.MaxValue);
        Assert.Equal(PumpExit.ClientProtocolViolation, scanner.ScanFromClient(Seq([(byte)'Q', 0, 0, 0, 3]), new ServerProtocolState(), out _, out _, out _));

        scanner = new ForwardingScanner(int.MaxValue);
        Assert.Equal(PumpExit.ClientProtocolViolation, scanner.ScanFromClient(Seq([1, 0, 0, 0, 4]), new ServerProtocolState(), out _, out _, out _));
        Assert.Contains("invalid frontend message type", scanner.Violation);
    }

    [Fact]
    public void Ready_for_query_with_a_wrong_length_is_invalid_not_an_exception()
    {
        var scanner = new ForwardingScanner(int.MaxValue);
        Assert.False(scanner.ScanFromServer(Seq([(byte)'Z', 0, 0, 0, 4]), new ServerProtocolState(), out _, out _));
        scanner = new ForwardingScanner(int.MaxValue);
        Assert.False(scanner.ScanFromServer(Seq([(byte)'Z', 0, 0, 0, 9, (byte)'I']), new ServerProtocolState(), out _, out _));
    }

    [Fact]
    public void A_body_larger_than_the_buffer_streams_across_reads_at_every_split()
    {
        var row = Msg('D', Enumerable.Range(0, 300).Select(i => (byte)i).ToArray());
        var stream = Concat(row, Msg('C', "SELECT 1\0"u8.ToArray()), Msg('Z', (byte)'I'));
        for (int split = 1; split < stream.Length; split++)
        {
            var scanner = new ForwardingScanner(int.MaxValue);
            var state = new ServerProtocolState { PendingReadyForQuery = 1 };
            long total = 0;
            var pending = stream.AsSpan(0, split).ToArray();
            int next = split;
            int transactions = 0;
            while (true)
            {
                Assert.True(scanner.ScanFromServer(Seq(pending), state, out long forward, out int tx));
                total += forward;
                transactions += tx;
                pending = pending.AsSpan((int)forward).ToArray();
                if (next >= stream.Length)
                {
                    break;
                }

                int take = Math.Min(7, stream.Length - next);
                pending = Concat(pending, stream.AsSpan(next, take).ToArray());
                next += take;
            }

            if (pending.Length > 0)
            {
                Assert.True(scanner.ScanFromServer(Seq(pending), state, out long rest, out int tx));
                total += rest;
                transactions += tx;
            }

            Assert.Equal(stream.Length, total);
            Assert.Equal(1, transactions);
            Assert.Equal(0, state.PendingReadyForQuery);
        }
    }

    [Fact]
    public void Parameter_status_is_recorded()
    {
        var scanner = new ForwardingScanner(int.MaxValue);
        var state = new ServerProtocolState();
        var msg = new MessageBuilder().ParameterStatus("TimeZone", "Europe/Paris").Written.ToArray();
        Assert.True(scanner.ScanFromServer(Seq(msg), state, out long forward, out _));
        Assert.Equal(msg.Length, forward);
        Assert.Equal("Europe/Paris", state.Parameters["timezone"]);
    }

    private sealed class RecordingInspector : IQueryInspector
    {
        public List<(string Sql, bool Named)> Seen { get; } = [];

        /// <summary>Texts starting with this are held back (as routing holds a write that needs another node).</summary>
        public string? HoldPrefix { get; set; }

        public bool Inspect(in ReadOnlySequence<byte> sql, bool namedStatement)
        {
            var text = System.Text.Encoding.UTF8.GetString(sql.ToArray());
            if (HoldPrefix is not null && text.StartsWith(HoldPrefix, StringComparison.Ordinal))
            {
                return false;
            }

            Seen.Add((text, namedStatement));
            return true;
        }

        public bool InspectBind(PreparedStatements.ClientStatement? statement) => true;
    }

    [Fact]
    public void Pooling_client_scan_stops_before_a_held_query_and_forwards_nothing_of_it()
    {
        var inspector = new RecordingInspector { HoldPrefix = "insert" };
        var scanner = new ForwardingScanner(int.MaxValue);
        scanner.EnablePooling(inspector, statementMode: false);
        var state = new ServerProtocolState();
        var first = Query("select 1");
        var held = Query("insert into t values (1)");
        var buffer = Seq(Concat(first, held, Query("select 2")));

        var exit = scanner.ScanFromClient(buffer, state, out long forward, out long consumed, out int queries);

        Assert.Null(exit);
        Assert.True(scanner.Held);
        Assert.Equal(first.Length, forward);
        Assert.Equal(first.Length, consumed);
        Assert.Equal(1, queries);
        Assert.Equal(1, state.PendingReadyForQuery);
        Assert.Equal(["select 1"], inspector.Seen.Select(s => s.Sql));

        // The next scan (once the held query may go) starts at the held message and clears the flag.
        inspector.HoldPrefix = null;
        exit = scanner.ScanFromClient(buffer.Slice(consumed), state, out forward, out _, out queries);
        Assert.Null(exit);
        Assert.False(scanner.Held);
        Assert.Equal(buffer.Length - first.Length, forward);
        Assert.Equal(2, queries);
    }

    private static byte[] Rfq(char status) => Msg('Z', (byte)status);

    [Fact]
    public void Pooling_server_scan_stops_after_the_ready_for_query_that_ends_the_last_outstanding_batch()
    {
        var scanner = new ForwardingScanner(int.MaxValue);
        scanner.EnablePooling(new RecordingInspector(), statementMode: false);
        var state = new ServerProtocolState();
        var client = Concat(Msg('Q', "select 1\0"u8.ToArray()), Msg('Q', "select 2\0"u8.ToArray()));
        Assert.Null(scanner.ScanFromClient(Seq(client), state, out _, out _, out _));

        var first = Concat(Msg('C', "SELECT 1\0"u8.ToArray()), Rfq('I'));
        var second = Concat(Msg('C', "SELECT 1\0"u8.ToArray()), Rfq('I'));
        var server = Concat(first, second, Msg('N', 0));

        Assert.True(scanner.ScanFromServer(Seq(server), state, out long forward, out _, out var stop));

        // The first 'I' leaves one query outstanding: not a release point. The second is, and the scan stops there.
        Assert.Equal(ServerStop.Idle, stop);
        Assert.Equal(first.Length + second.Length, forward);
    }

    [Fact]
    public void Statement_mode_stops_before_a_ready_for_query_inside_a_transaction_block()
    {
        var scanner = new ForwardingScanner(int.MaxValue);
        scanner.EnablePooling(new RecordingInspector(), statementMode: true);
        var state = new ServerProtocolState();
        Assert.Null(scanner.ScanFromClient(Seq(Msg('Q', "begin\0"u8.ToArray())), state, out _, out _, out _));
        var complete = Msg('C', "BEGIN\0"u8.ToArray());

        Assert.True(scanner.ScanFromServer(Seq(Concat(complete, Rfq('T'))), state, out long forward, out _, out var stop));

        Assert.Equal(ServerStop.TransactionBlock, stop);
        Assert.Equal(complete.Length, forward);
        Assert.Equal(0, state.PendingReadyForQuery);
    }

    [Fact]
    public void Pooling_client_scan_shows_each_query_text_once_and_waits_for_a_whole_message()
    {
        var inspector = new RecordingInspector();
        var scanner = new ForwardingScanner(int.MaxValue);
        scanner.EnablePooling(inspector, statementMode: false);
        var state = new ServerProtocolState();
        var query = Msg('Q', "set search_path = x\0"u8.ToArray());
        var parse = Msg('P', [.. "s1\0"u8.ToArray(), .. "select 1\0"u8.ToArray(), 0, 0]);
        var bytes = Concat(query, parse);

        Assert.Null(scanner.ScanFromClient(Seq(bytes[..(query.Length + 3)]), state, out long forward, out long consumed, out _));
        Assert.Equal(query.Length, forward);
        Assert.Equal(query.Length, consumed);
        Assert.Null(scanner.ScanFromClient(Seq(bytes[query.Length..]), state, out forward, out _, out _));
        Assert.Equal(parse.Length, forward);

        Assert.Equal([("set search_path = x", false), ("select 1", true)], inspector.Seen);
    }

    [Theory]
    [InlineData("\0select 1\0", true, "select 1", false)]
    [InlineData("s1\0select $1\0\0\0", true, "select $1", true)]
    [InlineData("select 1\0", false, "select 1", false)]
    [InlineData("select 1", false, "select 1", false)]
    [InlineData("\0", true, "", false)]
    public void Query_text_is_found_the_same_whole_or_split_anywhere(string body, bool parse, string expected, bool expectNamed)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(body);
        for (int split = 0; split <= bytes.Length; split++)
        {
            var sequence = Sequences.TwoSegments(bytes[..split], bytes[split..]);
            Assert.True(ForwardingScanner.TryGetQueryText(sequence, parse, out var text, out bool named));
            Assert.Equal(expected, System.Text.Encoding.UTF8.GetString(text.ToArray()));
            Assert.Equal(expectNamed, named);
        }
    }

    [Fact]
    public void A_parse_without_its_statement_name_ending_has_no_text()
    {
        var bytes = "s1"u8.ToArray();
        Assert.False(ForwardingScanner.TryGetQueryText(new ReadOnlySequence<byte>(bytes), parse: true, out _, out _));
        Assert.False(ForwardingScanner.TryGetQueryText(Sequences.TwoSegments(bytes[..1], bytes[1..]), parse: true, out _, out _));
    }
}
