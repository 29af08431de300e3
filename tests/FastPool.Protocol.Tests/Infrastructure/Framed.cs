using System.Buffers;
using System.Text;

namespace FastPool.Protocol.Tests.Infrastructure;

/// <summary>Feeds a whole message through <see cref="MessageFramer"/> at every split and hands each body to an assertion.</summary>
internal static class Framed
{
    public const int MaxLength = 1 << 20;

    public static void ForEachSplit(byte[] message, byte expectedCode, Action<ReadOnlySequence<byte>> assertBody, bool threeWay = false)
    {
        int cases = 0;
        foreach (var sequence in Splits.All(message, threeWay))
        {
            var reader = new SequenceReader<byte>(sequence);
            var status = MessageFramer.TryReadMessage(ref reader, MaxLength, out byte code, out var body);
            Assert.Equal(OperationStatus.Done, status);
            Assert.Equal(expectedCode, code);
            Assert.True(reader.End);
            Assert.Equal(message.Length - MessageHeader.Size, body.Length);
            assertBody(body);
            cases++;
        }

        Assert.True(cases > message.Length);
    }

    public static void ForEachSplit(byte[] message, FrontendCode expectedCode, Action<ReadOnlySequence<byte>> assertBody, bool threeWay = false) =>
        ForEachSplit(message, (byte)expectedCode, assertBody, threeWay);

    public static void ForEachSplit(byte[] message, BackendCode expectedCode, Action<ReadOnlySequence<byte>> assertBody, bool threeWay = false) =>
        ForEachSplit(message, (byte)expectedCode, assertBody, threeWay);

    public static string Text(in ReadOnlySequence<byte> bytes) => Encoding.UTF8.GetString(bytes);

    /// <summary>The body of a whole message, as one segment.</summary>
    public static ReadOnlySequence<byte> BodyOf(byte[] message) => new(message, MessageHeader.Size, message.Length - MessageHeader.Size);
}
