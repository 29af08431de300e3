using System.Buffers;

namespace FastPool.Proxy.Tests.Sessions;

/// <summary>Byte sequences split across segments, as a pipe hands them over when a message straddles two reads.</summary>
internal static class Sequences
{
    public static ReadOnlySequence<byte> TwoSegments(byte[] first, byte[] second)
    {
        if (first.Length == 0 || second.Length == 0)
        {
            return new ReadOnlySequence<byte>([.. first, .. second]);
        }

        var head = new Segment(first, 0);
        var tail = head.Append(second);
        return new ReadOnlySequence<byte>(head, 0, tail, second.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(byte[] memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(byte[] memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
