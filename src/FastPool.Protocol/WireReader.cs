using System.Buffers;
using System.Buffers.Binary;

namespace FastPool.Protocol;

/// <summary>
/// The protocol's data types (55.6 "Message Data Types") read from a <see cref="SequenceReader{T}"/> without
/// copying: strings and byte runs come back as slices of the sequence they arrived in.
/// </summary>
internal static class WireReader
{
    /// <summary>
    /// An Int16 count. The wire type is Int16 (55.7), but PostgreSQL reads counts unsigned (pq_getmsgint), which
    /// is how a Bind carries up to 65535 parameters; reading them signed would reject valid messages.
    /// </summary>
    public static bool TryReadCount16(ref SequenceReader<byte> reader, out int count)
    {
        if (reader.TryReadBigEndian(out short value))
        {
            count = (ushort)value;
            return true;
        }

        count = 0;
        return false;
    }

    /// <summary>An object id: sent as Int32 (55.7 Parse, RowDescription), but oids are unsigned 32-bit in PostgreSQL.</summary>
    public static bool TryReadOid(ref SequenceReader<byte> reader, out uint oid)
    {
        bool ok = reader.TryReadBigEndian(out int value);
        oid = (uint)value;
        return ok;
    }

    /// <summary>A String (55.6): bytes up to a zero terminator, which is consumed but not returned.</summary>
    public static bool TryReadCString(ref SequenceReader<byte> reader, out ReadOnlySequence<byte> value) =>
        reader.TryReadTo(out value, 0);

    /// <summary>The next <paramref name="length"/> bytes as one slice.</summary>
    public static bool TryReadBlock(ref SequenceReader<byte> reader, long length, out ReadOnlySequence<byte> block)
    {
        if (length < 0 || reader.Remaining < length)
        {
            block = default;
            return false;
        }

        var start = reader.Position;
        reader.Advance(length);
        block = reader.Sequence.Slice(start, reader.Position);
        return true;
    }

    /// <summary>
    /// Validates <paramref name="count"/> length-prefixed values (Int32 length, -1 for NULL with no bytes after it,
    /// 55.7 Bind / DataRow / FunctionCall) and returns the bytes they occupy, so enumerating them later cannot fail.
    /// </summary>
    public static bool TryReadValues(ref SequenceReader<byte> reader, int count, out ReadOnlySequence<byte> values)
    {
        var start = reader.Position;
        for (int i = 0; i < count; i++)
        {
            if (!reader.TryReadBigEndian(out int length) || length < -1)
            {
                values = default;
                return false;
            }

            if (length > 0)
            {
                if (reader.Remaining < length)
                {
                    values = default;
                    return false;
                }

                reader.Advance(length);
            }
        }

        values = reader.Sequence.Slice(start, reader.Position);
        return true;
    }

    public static short ReadInt16At(in ReadOnlySequence<byte> sequence, long offset)
    {
        var slice = sequence.Slice(offset, sizeof(short));
        if (slice.FirstSpan.Length >= sizeof(short))
        {
            return BinaryPrimitives.ReadInt16BigEndian(slice.FirstSpan);
        }

        Span<byte> tmp = stackalloc byte[sizeof(short)];
        slice.CopyTo(tmp);
        return BinaryPrimitives.ReadInt16BigEndian(tmp);
    }

    public static int ReadInt32At(in ReadOnlySequence<byte> sequence, long offset)
    {
        var slice = sequence.Slice(offset, sizeof(int));
        if (slice.FirstSpan.Length >= sizeof(int))
        {
            return BinaryPrimitives.ReadInt32BigEndian(slice.FirstSpan);
        }

        Span<byte> tmp = stackalloc byte[sizeof(int)];
        slice.CopyTo(tmp);
        return BinaryPrimitives.ReadInt32BigEndian(tmp);
    }
}
