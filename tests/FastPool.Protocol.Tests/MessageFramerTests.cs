using System.Buffers;
using FastPool.Protocol.Tests.Infrastructure;
using static FastPool.Protocol.Tests.Infrastructure.Framed;
using static FastPool.Protocol.Tests.Infrastructure.TestMessages;

namespace FastPool.Protocol.Tests;

public class MessageFramerTests
{
    // A simple-query answer with every common shape: a body-less message, a zero-column row, a NULL and a multi-byte string.
    private static readonly byte[][] Exchange =
    [
        Build(b => b.RowDescription(new Field("k", 0, 0, 25, -1, -1, FormatCode.Text))),
        Build(b => b.DataRow(Utf8("straße"))),
        Build(b => b.DataRow([null])),
        Build(b => b.CommandComplete("SELECT 2")),
        Build(b => b.Empty((byte)BackendCode.EmptyQueryResponse)),
        Build(b => b.ReadyForQuery(TransactionStatus.InTransaction)),
    ];

    [Fact]
    public void Reads_messages_back_to_back_at_every_split()
    {
        byte[] all = [.. Exchange.SelectMany(m => m)];
        foreach (var sequence in Splits.All(all, threeWay: true))
        {
            var reader = new SequenceReader<byte>(sequence);
            foreach (var expected in Exchange)
            {
                Assert.Equal(OperationStatus.Done, MessageFramer.TryReadMessage(ref reader, MaxLength, out byte code, out var body));
                Assert.Equal(expected[0], code);
                Assert.Equal(expected[MessageHeader.Size..], body.ToArray());
            }

            Assert.True(reader.End);
            Assert.Equal(OperationStatus.NeedMoreData, MessageFramer.TryReadMessage(ref reader, MaxLength, out _, out _));
        }
    }

    [Fact]
    public void A_truncated_message_needs_more_data_and_is_not_consumed()
    {
        var first = Build(b => b.CommandComplete("UPDATE 1"));
        var second = Build(b => b.DataRow(Utf8("abc"), null));
        byte[] all = [.. first, .. second];
        for (int cut = first.Length; cut < all.Length; cut++)
        {
            foreach (var sequence in Splits.TwoWay(all[..cut]))
            {
                var reader = new SequenceReader<byte>(sequence);
                Assert.Equal(OperationStatus.Done, MessageFramer.TryReadMessage(ref reader, MaxLength, out _, out _));
                Assert.Equal(OperationStatus.NeedMoreData, MessageFramer.TryReadMessage(ref reader, MaxLength, out byte code, out var body));
                Assert.Equal(first.Length, reader.Consumed);
                Assert.True(body.IsEmpty);

                // The code is known as soon as the whole header is there.
                Assert.Equal(cut - first.Length >= MessageHeader.Size ? (byte)'D' : (byte)0, code);
            }
        }
    }

    [Theory]
    [InlineData(3)]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData(1025)]
    [InlineData(int.MaxValue)]
    public void A_length_below_4_or_above_the_maximum_is_invalid(int length)
    {
        byte[] ok = Build(b => b.Sync());
        byte[] bad = [(byte)'Q', (byte)(length >> 24), (byte)(length >> 16), (byte)(length >> 8), (byte)length, 0, 0, 0];
        byte[] all = [.. ok, .. bad];
        foreach (var sequence in Splits.TwoWay(all))
        {
            var reader = new SequenceReader<byte>(sequence);
            Assert.Equal(OperationStatus.Done, MessageFramer.TryReadMessage(ref reader, 1024, out _, out _));
            Assert.Equal(OperationStatus.InvalidData, MessageFramer.TryReadMessage(ref reader, 1024, out byte code, out _));
            Assert.Equal((byte)'Q', code);
            Assert.Equal(ok.Length, reader.Consumed);
        }
    }

    [Fact]
    public void A_length_equal_to_the_maximum_is_accepted()
    {
        var message = Build(b => b.CopyData((byte)'d', new byte[100]));
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(message));
        Assert.Equal(OperationStatus.Done, MessageFramer.TryReadMessage(ref reader, 104, out _, out var body));
        Assert.Equal(100, body.Length);
        reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(message));
        Assert.Equal(OperationStatus.InvalidData, MessageFramer.TryReadMessage(ref reader, 103, out _, out _));
    }

    [Fact]
    public void A_frontend_extended_batch_frames_and_reads_at_every_split()
    {
        byte[] batch =
        [
            .. Build(b => b.Parse("", "SELECT abalance FROM pgbench_accounts WHERE aid = $1", 23)),
            .. Build(b => b.Bind("", "", [1], [[0, 0, 0, 9]], [1])),
            .. Build(b => b.Describe(TargetKind.Portal, "")),
            .. Build(b => b.Execute("", 0)),
            .. Build(b => b.Sync()),
        ];
        foreach (var sequence in Splits.All(batch))
        {
            var reader = new SequenceReader<byte>(sequence);
            var codes = new List<char>();
            while (MessageFramer.TryReadMessage(ref reader, MaxLength, out byte code, out var body) == OperationStatus.Done)
            {
                codes.Add((char)code);
                bool valid = (FrontendCode)code switch
                {
                    FrontendCode.Parse => FrontendMessageReader.TryReadParse(body, out var p) && p.ParameterTypes[0] == 23,
                    FrontendCode.Bind => FrontendMessageReader.TryReadBind(body, out var b) && b.Parameters.Count == 1,
                    FrontendCode.Describe => FrontendMessageReader.TryReadDescribe(body, out var k, out _) && k == TargetKind.Portal,
                    FrontendCode.Execute => FrontendMessageReader.TryReadExecute(body, out _, out int rows) && rows == 0,
                    FrontendCode.Sync => FrontendMessageReader.IsValidEmptyBody(body),
                    _ => false,
                };
                Assert.True(valid, $"message {(char)code}");
            }

            Assert.Equal("PBDES", new string([.. codes]));
            Assert.True(reader.End);
        }
    }
}
