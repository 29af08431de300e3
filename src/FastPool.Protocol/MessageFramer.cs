using System.Buffers;

namespace FastPool.Protocol;

/// <summary>
/// Cuts whole typed messages (Byte1 code, Int32 length counting itself, body; 55.7 "Message Formats") off a
/// <see cref="SequenceReader{T}"/>. The body comes back as a slice of the buffer, never copied. For code that
/// needs whole messages (login, the admin console, tests); the forwarding pumps stream bodies instead.
/// </summary>
public static class MessageFramer
{
    /// <summary>
    /// Reads one message. <see cref="OperationStatus.Done"/>: the reader is past the whole message and
    /// <paramref name="body"/> is its body. <see cref="OperationStatus.NeedMoreData"/>: the header or body is not
    /// all buffered; the reader is not moved (mark the buffer examined to its end and read again).
    /// <see cref="OperationStatus.InvalidData"/>: the length field is below 4 or above <paramref name="maxLength"/>;
    /// the reader is not moved. <paramref name="code"/> is set whenever the 5-byte header was available.
    /// </summary>
    /// <param name="maxLength">The largest length field accepted (body plus the 4 length bytes).</param>
    public static OperationStatus TryReadMessage(ref SequenceReader<byte> reader, int maxLength, out byte code, out ReadOnlySequence<byte> body)
    {
        body = default;
        if (!MessageHeader.TryPeek(ref reader, out var header))
        {
            code = 0;
            return OperationStatus.NeedMoreData;
        }

        code = header.Code;

        // The length includes itself, so anything below 4 cannot be a message (55.7).
        if (header.Length < 4 || header.Length > maxLength)
        {
            return OperationStatus.InvalidData;
        }

        if (reader.Remaining < header.TotalLength)
        {
            return OperationStatus.NeedMoreData;
        }

        reader.Advance(MessageHeader.Size);
        var start = reader.Position;
        reader.Advance(header.BodyLength);
        body = reader.Sequence.Slice(start, reader.Position);
        return OperationStatus.Done;
    }
}
