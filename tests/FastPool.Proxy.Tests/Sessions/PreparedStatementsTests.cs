using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using FastPool.Protocol;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Sessions;

namespace FastPool.Proxy.Tests.Sessions;

/// <summary>
/// The prepared-statement rewrite as the pumps drive it: client batches and server replies split into two reads
/// at every offset (the second read scanning what the first left), and what each side would receive.
/// </summary>
public class PreparedStatementsTests
{
    private static readonly byte[] s_parseS1 = Parse("s1", "select $1::int", 23);

    [Fact]
    public void Parse_and_bind_go_to_the_server_under_the_shared_name_at_every_split()
    {
        byte[] batch = [.. s_parseS1, .. Bind("s1"), .. Execute(), .. Sync()];
        for (int split = 0; split <= batch.Length; split++)
        {
            var session = new Session();
            var sent = Messages(session.FromClient(batch, split));

            Assert.Equal("PBES", Codes(sent));
            string name = CString(sent[0].Body, 0);
            Assert.Matches("^fp_[0-9a-f]{16}$", name);
            Assert.Equal("select $1::int", CString(sent[0].Body, name.Length + 1));
            Assert.Equal(name, CString(sent[1].Body, 2));
            Assert.Equal(Bind("s1").AsSpan(5 + 2 + 3).ToArray(), sent[1].Body.AsSpan(2 + name.Length + 1).ToArray());
            Assert.Equal(1, session.Server.Prepared.Count);
        }
    }

    [Fact]
    public void With_routing_a_bind_is_shown_its_statement_and_a_held_one_forwards_nothing_of_itself()
    {
        byte[] parses = [.. s_parseS1, .. Parse("w", "insert into t values ($1)", 23), .. Sync()];
        byte[] batch = [.. Bind("s1"), .. Execute(), .. Sync(), .. Bind("w"), .. Execute(), .. Sync()];
        for (int split = 0; split <= batch.Length; split++)
        {
            var session = new Session { HoldBindsOf = "insert" };
            session.RouteBinds();
            session.FromClient(parses, parses.Length);
            var sent = Messages(session.FromClient(batch, split, mayHold: true));

            // The read goes on (as the server knows it); the write's Bind and what follows it stay with the client.
            Assert.Equal("BES", Codes(sent));
            Assert.Equal(["select $1::int"], session.Bound);
            Assert.True(session.Held);
        }
    }

    [Fact]
    public void A_server_without_the_statement_gets_it_before_the_bind_and_its_parse_complete_is_taken_out()
    {
        byte[] replies = [.. Msg('1'), .. Msg('2'), .. Msg('C', "SELECT 1\0"u8.ToArray()), .. Ready('I')];
        for (int split = 0; split <= replies.Length; split++)
        {
            var session = Prepared();
            session.Attach(new ServerProtocolState());
            var sent = Messages(session.FromClient([.. Bind("s1"), .. Execute(), .. Sync()], 3));
            Assert.Equal("PBES", Codes(sent));
            Assert.Equal("2CZ", Codes(Messages(session.FromServer(replies, split))));
        }
    }

    [Fact]
    public void Same_statement_again_is_a_noop_close_whose_reply_becomes_parse_complete()
    {
        byte[] replies = [.. Msg('3'), .. Ready('I')];
        for (int split = 0; split <= replies.Length; split++)
        {
            var session = Prepared();
            var sent = Messages(session.FromClient([.. Parse("other", "select $1::int", 23), .. Sync()], 5));
            Assert.Equal("CS", Codes(sent));
            Assert.Equal("Sfp_noop", CString(sent[0].Body, 0));
            Assert.Equal("1Z", Codes(Messages(session.FromServer(replies, split))));
        }
    }

    [Fact]
    public void Eviction_closes_the_least_recently_used_and_its_close_complete_is_taken_out()
    {
        var session = Prepared(max: 1);

        var sent = Messages(session.FromClient([.. Parse("s2", "select 2"), .. Sync()], 0));
        Assert.Equal("CPS", Codes(sent));
        Assert.StartsWith("Sfp_", CString(sent[0].Body, 0), StringComparison.Ordinal);
        Assert.Equal(1, session.Server.Prepared.Count);
        Assert.Equal("1Z", Codes(Messages(session.FromServer([.. Msg('3'), .. Msg('1'), .. Ready('I')], 2))));

        // s1 comes back before its Bind, evicting s2.
        Assert.Equal("CPBS", Codes(Messages(session.FromClient([.. Bind("s1"), .. Sync()], 0))));
        Assert.Equal("2Z", Codes(Messages(session.FromServer([.. Msg('3'), .. Msg('1'), .. Msg('2'), .. Ready('I')], 0))));
    }

    [Fact]
    public void A_lowered_limit_is_met_when_the_server_is_next_used()
    {
        var first = Prepared();
        first.FromClient([.. Parse("s2", "select 2"), .. Sync()], 0);
        first.FromServer([.. Msg('1'), .. Ready('I')], 0);
        Assert.Equal(2, first.Server.Prepared.Count);

        // A client that logged in after max_prepared_statements went down to 1 gets the same server.
        var second = new Session(max: 1, known: first.Known);
        second.Attach(first.Server);
        var sent = Messages(second.FromClient([.. Parse("mine", "select 2"), .. Sync()], 0));
        Assert.Equal("CCS", Codes(sent));
        Assert.Equal("Sfp_noop", CString(sent[1].Body, 0));
        Assert.Equal("1Z", Codes(Messages(second.FromServer([.. Msg('3'), .. Msg('3'), .. Ready('I')], 0))));
        Assert.Equal(1, first.Server.Prepared.Count);
    }

    [Fact]
    public void A_failed_parse_forgets_the_statement_and_the_skipped_rest_is_undone()
    {
        var session = new Session();
        byte[] batch = [.. Parse("bad", "selec 1"), .. s_parseS1, .. Bind("s1"), .. Execute(), .. Sync()];
        Assert.Equal("PPBES", Codes(Messages(session.FromClient(batch, 0))));
        Assert.Equal(2, session.Server.Prepared.Count);

        Assert.Equal("EZ", Codes(Messages(session.FromServer([.. Msg('E', "SERROR\0C42601\0\0"u8.ToArray()), .. Ready('I')], 0))));
        Assert.Equal(0, session.Server.Prepared.Count);
        Assert.Equal(0, session.Prepared.Count);

        // Unknown to FastPool now: the names go to the server as the client sent them (it answers 26000).
        var sent = Messages(session.FromClient([.. Bind("s1"), .. Sync()], 0));
        Assert.Equal("s1", CString(sent[0].Body, 2));
    }

    [Fact]
    public void Close_of_a_client_statement_keeps_the_shared_one()
    {
        var session = Prepared();

        byte[] close = [.. Msg('C', [(byte)'S', .. "s1\0"u8.ToArray()]), .. Sync()];
        var sent = Messages(session.FromClient(close, 4));
        Assert.Equal("Sfp_noop", CString(sent[0].Body, 0));
        Assert.Equal("3Z", Codes(Messages(session.FromServer([.. Msg('3'), .. Ready('I')], 0))));
        Assert.Equal(1, session.Server.Prepared.Count);
        Assert.Equal(0, session.Prepared.Count);
    }

    [Fact]
    public void Unnamed_statements_pass_unchanged()
    {
        var session = new Session();
        byte[] batch = [.. Parse(string.Empty, "select 1"), .. Bind(string.Empty), .. Execute(), .. Sync()];
        for (int split = 0; split <= batch.Length; split++)
        {
            Assert.Equal(batch, new Session().FromClient(batch, split));
        }

        session.FromClient(batch, 0);
        byte[] replies = [.. Msg('1'), .. Msg('2'), .. Msg('C', "SELECT 1\0"u8.ToArray()), .. Ready('I')];
        Assert.Equal(replies, session.FromServer(replies, 7));
    }

    [Fact]
    public void Known_statements_are_answered_without_a_server()
    {
        var session = Prepared();
        var other = new Session(known: session.Known);
        byte[] prepare = [.. Parse("mine", "select $1::int", 23), .. Sync()];
        Assert.Equal(LocalAnswer.NeedMore, other.Prepared.TryAnswerWithoutServer(new ReadOnlySequence<byte>(prepare, 0, prepare.Length - 5), out _));
        Assert.Equal(LocalAnswer.Answered, other.Prepared.TryAnswerWithoutServer(new ReadOnlySequence<byte>(prepare), out long consumed));
        Assert.Equal(prepare.Length, consumed);
        Assert.Equal("1Z", Codes(Messages(other.Prepared.LocalReply.ToArray())));

        byte[] unknown = [.. Parse("x", "select 'never seen'"), .. Sync()];
        Assert.Equal(LocalAnswer.No, other.Prepared.TryAnswerWithoutServer(new ReadOnlySequence<byte>(unknown), out _));
        byte[] setting = [.. Parse("y", "set search_path = a"), .. Sync()];
        Assert.Equal(LocalAnswer.No, other.Prepared.TryAnswerWithoutServer(new ReadOnlySequence<byte>(setting), out _));

        // The client's Bind then prepares it on whatever server it gets.
        Assert.Equal("PBS", Codes(Messages(other.FromClient([.. Bind("mine"), .. Sync()], 0))));
    }

    /// <summary>A session whose client prepared s1 on its server.</summary>
    private static Session Prepared(int max = 200)
    {
        var session = new Session(max);
        Assert.Equal("PS", Codes(Messages(session.FromClient([.. s_parseS1, .. Sync()], 0))));
        Assert.Equal("1Z", Codes(Messages(session.FromServer([.. Msg('1'), .. Ready('I')], 0))));
        return session;
    }

    // ---- a session's two pumps, without sockets ----------------------------------------------

    private sealed class Session : IStatementOwner, IQueryInspector
    {
        private ForwardingScanner _scanner = new(int.MaxValue);

        public Session(int max = 200, KnownStatements? known = null)
        {
            Prepared = new PreparedStatements(this, max);
            _scanner.EnablePooling(this, statementMode: false);
            _scanner.EnablePreparedStatements(Prepared);
            Known = known ?? new KnownStatements();
            Prepared.UseKnown(Known);
            Server = new ServerProtocolState();
        }

        public PreparedStatements Prepared { get; }

        public KnownStatements Known { get; }

        public ServerProtocolState Server { get; private set; }

        public string? SearchPath => null;

        public void PinForStatement()
        {
        }

        public void InspectStatement(in ReadOnlySequence<byte> text)
        {
        }

        public bool InspectsEveryStatement => false;

        public bool Inspect(in ReadOnlySequence<byte> sql, bool namedStatement) => true;

        /// <summary>Replication routing: Binds of statements whose text starts with this are held back.</summary>
        public string? HoldBindsOf { get; set; }

        public List<string> Bound { get; } = [];

        public bool InspectBind(PreparedStatements.ClientStatement? statement)
        {
            var text = statement is null ? "?" : Encoding.UTF8.GetString(statement.Text);
            if (HoldBindsOf is not null && text.StartsWith(HoldBindsOf, StringComparison.Ordinal))
            {
                return false;
            }

            Bound.Add(text);
            return true;
        }

        public void RouteBinds() => _scanner.EnableBindRouting();

        public bool Held => _scanner.Held;

        public void Attach(ServerProtocolState server) => Server = server;

        /// <param name="mayHold">Routing may hold a message back: what follows it stays unconsumed.</param>
        public byte[] FromClient(byte[] input, int split, bool mayHold = false) =>
            Pump(input, split, buffer => (_scanner.ScanFromClient(buffer, Server, out long forward, out long consumed, out _), forward, consumed), Prepared.ToServer, mayHold);

        public byte[] FromServer(byte[] input, int split)
        {
            return Pump(input, split, buffer =>
            {
                _scanner.ScanFromServer(buffer, Server, out long forward, out _);
                return (null, forward, forward);
            }, Prepared.ToClient);
        }

        private static byte[] Pump(byte[] input, int split, Func<ReadOnlySequence<byte>, (PumpExit? Exit, long Forward, long Consumed)> scan, OutputBatch batch, bool mayHold = false)
        {
            var output = new List<byte>();
            byte[] pending = [];
            foreach (var chunk in new[] { input[..split], input[split..] })
            {
                var buffer = Sequences.TwoSegments(pending, chunk);
                var (_, forward, consumed) = scan(buffer);
                if (batch.IsEmpty)
                {
                    output.AddRange(buffer.Slice(0, forward).ToArray());
                }
                else
                {
                    Assert.True(batch.TryJoin(buffer, forward, out var joined));
                    output.AddRange(joined.ToArray());
                }

                pending = buffer.Slice(consumed).ToArray();
            }

            if (!mayHold)
            {
                Assert.Empty(pending);
            }

            return output.ToArray();
        }
    }

    // ---- messages (55.7) ---------------------------------------------------------------------

    private static byte[] Msg(char code, params byte[] body)
    {
        var b = new MessageBuilder();
        b.StartMessage((byte)code).WriteBytes(body).EndMessage();
        return b.Written.ToArray();
    }

    private static byte[] Z(string s) => [.. Encoding.UTF8.GetBytes(s), 0];

    private static byte[] Parse(string name, string sql, params int[] types)
    {
        var oids = new byte[2 + (4 * types.Length)];
        BinaryPrimitives.WriteInt16BigEndian(oids, (short)types.Length);
        for (int i = 0; i < types.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(oids.AsSpan(2 + (4 * i)), types[i]);
        }

        return Msg('P', [.. Z(name), .. Z(sql), .. oids]);
    }

    // Portal "p", the statement, no parameter formats, one text parameter "7", no result formats.
    private static byte[] Bind(string name) => Msg('B', [.. Z("p"), .. Z(name), 0, 0, 0, 1, 0, 0, 0, 1, (byte)'7', 0, 0]);

    private static byte[] Execute() => Msg('E', [.. Z("p"), 0, 0, 0, 0]);

    private static byte[] Sync() => Msg('S');

    private static byte[] Ready(char status) => Msg('Z', (byte)status);

    private static List<(char Code, byte[] Body)> Messages(byte[] bytes)
    {
        var list = new List<(char, byte[])>();
        for (int i = 0; i < bytes.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(i + 1));
            list.Add(((char)bytes[i], bytes.AsSpan(i + 5, length - 4).ToArray()));
            i += 1 + length;
        }

        return list;
    }

    private static string Codes(List<(char Code, byte[] Body)> messages) => new(messages.Select(m => m.Code).ToArray());

    private static string CString(byte[] body, int offset) =>
        Encoding.UTF8.GetString(body, offset, Array.IndexOf(body, (byte)0, offset) - offset);
}
