using System.Buffers;
using FastPool.Protocol.Tests.Infrastructure;
using static FastPool.Protocol.Tests.Infrastructure.TestMessages;

namespace FastPool.Protocol.Tests;

public class MessageHeaderTests
{
    [Fact]
    public void TryPeek_reads_code_and_length_at_every_split_without_consuming()
    {
        var message = Build(b => b.CommandComplete("SELECT 1"));
        foreach (var sequence in Splits.All(message, threeWay: true))
        {
            Assert.True(MessageHeader.TryPeek(sequence, out var header));
            AssertHeader(header, message.Length);

            var reader = new SequenceReader<byte>(sequence);
            Assert.True(MessageHeader.TryPeek(ref reader, out header));
            AssertHeader(header, message.Length);
            Assert.Equal(0, reader.Consumed);
        }
    }

    [Fact]
    public void TryPeek_needs_all_five_header_bytes()
    {
        var message = Build(b => b.CommandComplete("SELECT 1"));
        for (int length = 0; length < MessageHeader.Size; length++)
        {
            foreach (var sequence in Splits.TwoWay(message[..length]))
            {
                Assert.False(MessageHeader.TryPeek(sequence, out _));
                var reader = new SequenceReader<byte>(sequence);
                Assert.False(MessageHeader.TryPeek(ref reader, out _));
            }
        }

        foreach (var sequence in Splits.TwoWay(message[..MessageHeader.Size]))
        {
            Assert.True(MessageHeader.TryPeek(sequence, out var header));
            AssertHeader(header, message.Length);
        }
    }

    [Fact]
    public void TryPeek_on_a_reader_reads_the_header_at_its_position()
    {
        byte[] two = [.. Build(b => b.Sync()), .. Build(b => b.CommandComplete("SELECT 1"))];
        foreach (var sequence in Splits.All(two))
        {
            var reader = new SequenceReader<byte>(sequence);
            reader.Advance(5);
            Assert.True(MessageHeader.TryPeek(ref reader, out var header));
            AssertHeader(header, two.Length - 5);
            Assert.Equal(5, reader.Consumed);
        }
    }

    [Fact]
    public void TryPeek_returns_a_bad_length_as_sent()
    {
        var sequence = new ReadOnlySequence<byte>([(byte)'Q', 0xFF, 0xFF, 0xFF, 0xFF]);
        Assert.True(MessageHeader.TryPeek(sequence, out var header));
        Assert.Equal(-1, header.Length);
        Assert.Equal(-5, header.BodyLength);
    }

    private static void AssertHeader(MessageHeader header, int messageLength)
    {
        Assert.Equal((byte)BackendCode.CommandComplete, header.Code);
        Assert.Equal(messageLength - 1, header.Length);
        Assert.Equal(messageLength - MessageHeader.Size, header.BodyLength);
        Assert.Equal(messageLength, header.TotalLength);
    }
}
