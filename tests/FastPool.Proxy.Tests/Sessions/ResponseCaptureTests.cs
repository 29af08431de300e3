using System.Buffers;
using System.Text;
using FastPool.Proxy.Sessions;

namespace FastPool.Proxy.Tests.Sessions;

public sealed class ResponseCaptureTests
{
    private static byte[] Message(char code, byte[] body) =>
        [(byte)code, .. BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(body.Length + 4)), .. body];

    private static readonly byte[] s_response =
    [
        .. Message('1', []), .. Message('2', []),
        .. Message('T', [0, 1, (byte)'v', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 255, 255, 255, 255, 0, 0]),
        .. Message('D', [0, 1, 0, 0, 0, 1, (byte)'7']),
        .. Message('C', [.. Encoding.ASCII.GetBytes("SELECT 1"), 0]),
        .. Message('Z', [(byte)'I']),
    ];

    [Fact]
    public void A_complete_response_is_captured_whatever_the_forwarded_chunks()
    {
        for (int split = 0; split <= s_response.Length; split++)
        {
            var capture = new ResponseCapture();
            capture.Begin([1], ["t"], 0, 1000);
            var first = capture.Feed(new ReadOnlySequence<byte>(s_response, 0, split));
            var whole = first ?? capture.Feed(new ReadOnlySequence<byte>(s_response, split, s_response.Length - split));
            Assert.NotNull(whole);
            Assert.Equal(s_response, whole);
        }
    }

    [Fact]
    public void Errors_notices_transaction_blocks_and_oversized_responses_are_not_captured()
    {
        var error = (byte[])[.. Message('E', [(byte)'C', .. Encoding.ASCII.GetBytes("42P01"), 0, 0]), .. Message('Z', [(byte)'I'])];
        var inBlock = (byte[])[.. s_response[..^6], .. Message('Z', [(byte)'T'])];
        var notice = (byte[])[.. Message('N', [0]), .. s_response];
        foreach (var bytes in new[] { error, inBlock, notice })
        {
            var capture = new ResponseCapture();
            capture.Begin([1], ["t"], 0, 1000);
            Assert.Null(capture.Feed(new ReadOnlySequence<byte>(bytes)));
            Assert.False(capture.Active);
        }

        var small = new ResponseCapture();
        small.Begin([1], ["t"], 0, 10);
        Assert.Null(small.Feed(new ReadOnlySequence<byte>(s_response)));
        Assert.False(small.Active);
    }
}
