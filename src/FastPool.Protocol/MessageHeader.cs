using System.Buffers;
using System.Buffers.Binary;

namespace FastPool.Protocol;

/// <summary>
/// The 5-byte header of every typed message: one code byte, then an Int32 length that counts itself but not
/// the code byte (PostgreSQL docs, 55.2 "Message Flow" / 55.7 "Message Formats").
/// </summary>
public readonly struct MessageHeader
{
    public const int Size = 5;

    public MessageHeader(byte code, int length)
    {
        Code = code;
        Length = length;
    }

    public byte Code { get; }

    /// <summary>The length field: body plus the 4 length bytes.</summary>
    public int Length { get; }

    public int BodyLength => Length - 4;

    /// <summary>Header and body, as the message occupies the wire.</summary>
    public long TotalLength => Length + 1L;

    /// <summary>
    /// Reads a header without consuming it. Returns false when fewer than 5 bytes are buffered. The length is
    /// returned as sent; callers validate it (a length below 4 is a protocol violation).
    /// </summary>
    public static bool TryPeek(in ReadOnlySequence<byte> buffer, out MessageHeader header)
    {
        var first = buffer.FirstSpan;
        if (first.Length >= Size)
        {
            header = new MessageHeader(first[0], BinaryPrimitives.ReadInt32BigEndian(first.Slice(1)));
            return true;
        }

        return TryPeekSlow(buffer, out header);
    }

    /// <summary>The same over a SequenceReader positioned at a message boundary; does not advance it.</summary>
    public static bool TryPeek(ref SequenceReader<byte> reader, out MessageHeader header)
    {
        var span = reader.UnreadSpan;
        if (span.Length >= Size)
        {
            header = new MessageHeader(span[0], BinaryPrimitives.ReadInt32BigEndian(span.Slice(1)));
            return true;
        }

        Span<byte> tmp = stackalloc byte[Size];
        if (!reader.TryCopyTo(tmp))
        {
            header = default;
            return false;
        }

        header = new MessageHeader(tmp[0], BinaryPrimitives.ReadInt32BigEndian(tmp.Slice(1)));
        return true;
    }

    private static bool TryPeekSlow(in ReadOnlySequence<byte> buffer, out MessageHeader header)
    {
        if (buffer.Length < Size)
        {
            header = default;
            return false;
        }

        Span<byte> tmp = stackalloc byte[Size];
        buffer.Slice(0, Size).CopyTo(tmp);
        header = new MessageHeader(tmp[0], BinaryPrimitives.ReadInt32BigEndian(tmp.Slice(1)));
        return true;
    }
}
