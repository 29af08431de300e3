using System.Buffers;

namespace FastPool.Protocol.Tests.Infrastructure;

/// <summary>The same bytes cut into buffer segments every possible way, as socket reads may deliver them.</summary>
internal static class Splits
{
    /// <summary>One segment, then two segments split at every offset (0 and Length give an empty segment).</summary>
    public static IEnumerable<ReadOnlySequence<byte>> TwoWay(byte[] data)
    {
        yield return new ReadOnlySequence<byte>(data);
        for (int i = 0; i <= data.Length; i++)
        {
            yield return TestSequenceSegment.CreateSequence(data[..i], data[i..]);
        }
    }

    /// <summary>Three segments split at every pair of offsets, including empty middle segments.</summary>
    public static IEnumerable<ReadOnlySequence<byte>> ThreeWay(byte[] data)
    {
        for (int i = 0; i <= data.Length; i++)
        {
            for (int j = i; j <= data.Length; j++)
            {
                yield return TestSequenceSegment.CreateSequence(data[..i], data[i..j], data[j..]);
            }
        }
    }

    /// <summary>Every byte in its own segment.</summary>
    public static ReadOnlySequence<byte> OneBytePerSegment(byte[] data)
    {
        var parts = new byte[data.Length][];
        for (int i = 0; i < data.Length; i++)
        {
            parts[i] = [data[i]];
        }

        return TestSequenceSegment.CreateSequence(parts);
    }

    /// <summary>Two-way splits plus one byte per segment, and three-way splits when asked.</summary>
    public static IEnumerable<ReadOnlySequence<byte>> All(byte[] data, bool threeWay = false)
    {
        foreach (var sequence in TwoWay(data))
        {
            yield return sequence;
        }

        yield return OneBytePerSegment(data);
        if (threeWay)
        {
            foreach (var sequence in ThreeWay(data))
            {
                yield return sequence;
            }
        }
    }
}
