using System.Buffers;

namespace FastPool.Benchmarks.Infrastructure;

/// <summary>Builds a multi-segment sequence with fixed-size segments, like a pipe of 4 KiB blocks.</summary>
internal sealed class ChunkedSequence : ReadOnlySequenceSegment<byte>
{
    private ChunkedSequence(ReadOnlyMemory<byte> memory, long runningIndex)
    {
        Memory = memory;
        RunningIndex = runningIndex;
    }

    public static ReadOnlySequence<byte> Create(byte[] data, int segmentSize)
    {
        if (data.Length <= segmentSize)
        {
            return new ReadOnlySequence<byte>(data);
        }

        // Each segment gets its own array, as pipe blocks do.
        var first = new ChunkedSequence(data.AsSpan(0, segmentSize).ToArray(), 0);
        var last = first;
        for (int offset = segmentSize; offset < data.Length; offset += segmentSize)
        {
            var next = new ChunkedSequence(data.AsSpan(offset, Math.Min(segmentSize, data.Length - offset)).ToArray(), offset);
            last.Next = next;
            last = next;
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}
