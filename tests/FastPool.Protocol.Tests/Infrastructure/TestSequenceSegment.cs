using System.Buffers;

namespace FastPool.Protocol.Tests.Infrastructure;

/// <summary>
/// A segment of a hand-made multi-segment <see cref="ReadOnlySequence{T}"/>. Each segment's bytes sit in the
/// middle of a larger array filled with 0xEE, so a reader that strays outside its segment reads garbage and fails.
/// </summary>
internal sealed class TestSequenceSegment : ReadOnlySequenceSegment<byte>
{
    private const byte Guard = 0xEE;

    private TestSequenceSegment(ReadOnlyMemory<byte> memory, long runningIndex)
    {
        Memory = memory;
        RunningIndex = runningIndex;
    }

    /// <summary>A sequence with one segment per part; empty parts make empty segments.</summary>
    public static ReadOnlySequence<byte> CreateSequence(params ReadOnlySpan<byte[]> parts)
    {
        if (parts.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new TestSequenceSegment(Guarded(parts[0]), 0);
        var last = first;
        for (int i = 1; i < parts.Length; i++)
        {
            last = last.Append(parts[i]);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private TestSequenceSegment Append(byte[] bytes)
    {
        var next = new TestSequenceSegment(Guarded(bytes), RunningIndex + Memory.Length);
        Next = next;
        return next;
    }

    private static ReadOnlyMemory<byte> Guarded(byte[] bytes)
    {
        var array = new byte[bytes.Length + 16];
        array.AsSpan().Fill(Guard);
        bytes.CopyTo(array, 8);
        return array.AsMemory(8, bytes.Length);
    }
}
