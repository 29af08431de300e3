using System.Buffers;

namespace FastPool.Protocol;

/// <summary>
/// Allocation-free readers for the bodies of server messages (55.7 "Message Formats") that
/// <see cref="BackendMessageReader"/> does not cover. Each takes the body only (after the 5-byte header, as
/// <see cref="MessageFramer"/> returns it) and returns strings and bytes as slices of it. A reader returns
/// false when the body is truncated, has bytes left over, or breaks a rule of its message.
/// </summary>
public static class BackendMessages
{
    /// <summary>ParseComplete, BindComplete, CloseComplete, NoData, EmptyQueryResponse, PortalSuspended and CopyDone carry no body (55.7).</summary>
    public static bool HasEmptyBody(BackendCode code) => code
        is BackendCode.ParseComplete or BackendCode.BindComplete or BackendCode.CloseComplete or BackendCode.NoData
        or BackendCode.EmptyQueryResponse or BackendCode.PortalSuspended or BackendCode.CopyDone;

    /// <summary>Validates a message that must have no body (<see cref="HasEmptyBody"/>).</summary>
    public static bool IsValidEmptyBody(in ReadOnlySequence<byte> body) => body.IsEmpty;

    /// <summary>RowDescription: Int16 field count, then per field a String name and 18 fixed bytes (55.7 RowDescription).</summary>
    public static bool TryReadRowDescription(in ReadOnlySequence<byte> body, out RowDescriptionMessage message)
    {
        var reader = new SequenceReader<byte>(body);
        if (WireReader.TryReadCount16(ref reader, out int count))
        {
            var start = reader.Position;
            int i = 0;
            for (; i < count; i++)
            {
                if (!reader.TryAdvanceTo(0) || reader.Remaining < RowDescriptionMessage.FixedFieldBytes)
                {
                    break;
                }

                reader.Advance(RowDescriptionMessage.FixedFieldBytes);
            }

            if (i == count && reader.End)
            {
                message = new RowDescriptionMessage(count, reader.Sequence.Slice(start, reader.Position));
                return true;
            }
        }

        message = default;
        return false;
    }

    /// <summary>DataRow: Int16 column count, then per column Int32 length (-1 for NULL) and the bytes (55.7 DataRow).</summary>
    public static bool TryReadDataRow(in ReadOnlySequence<byte> body, out FieldValueList columns)
    {
        var reader = new SequenceReader<byte>(body);
        if (WireReader.TryReadCount16(ref reader, out int count)
            && WireReader.TryReadValues(ref reader, count, out var values)
            && reader.End)
        {
            columns = new FieldValueList(count, values);
            return true;
        }

        columns = default;
        return false;
    }

    /// <summary>CommandComplete: one String, the command tag such as "SELECT 5" or "INSERT 0 1" (55.7 CommandComplete).</summary>
    public static bool TryReadCommandComplete(in ReadOnlySequence<byte> body, out ReadOnlySequence<byte> tag)
    {
        var reader = new SequenceReader<byte>(body);
        if (WireReader.TryReadCString(ref reader, out tag) && reader.End)
        {
            return true;
        }

        tag = default;
        return false;
    }

    /// <summary>
    /// CopyInResponse, CopyOutResponse, CopyBothResponse: Int8 overall format (0 text, 1 binary), Int16 column
    /// count, Int16[count] column formats (55.7 CopyInResponse).
    /// </summary>
    public static bool TryReadCopyResponse(in ReadOnlySequence<byte> body, out CopyResponseMessage message)
    {
        var reader = new SequenceReader<byte>(body);
        if (reader.TryRead(out byte overall)
            && overall <= 1
            && WireReader.TryReadCount16(ref reader, out int count)
            && WireReader.TryReadBlock(ref reader, count * 2L, out var formats)
            && reader.End)
        {
            message = new CopyResponseMessage((FormatCode)overall, new FormatCodeList(count, formats));
            return true;
        }

        message = default;
        return false;
    }

    /// <summary>CopyData: the body is the data (55.7 CopyData).</summary>
    public static ReadOnlySequence<byte> ReadCopyData(in ReadOnlySequence<byte> body) => body;

    /// <summary>NotificationResponse: Int32 notifying backend's process id, String channel, String payload (55.7 NotificationResponse).</summary>
    public static bool TryReadNotificationResponse(in ReadOnlySequence<byte> body, out int processId, out ReadOnlySequence<byte> channel, out ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(body);
        if (reader.TryReadBigEndian(out processId)
            && WireReader.TryReadCString(ref reader, out channel)
            && WireReader.TryReadCString(ref reader, out payload)
            && reader.End)
        {
            return true;
        }

        processId = 0;
        channel = payload = default;
        return false;
    }

    /// <summary>
    /// ErrorResponse or NoticeResponse: fields of Byte1 type and String value, ended by a zero byte (55.7
    /// ErrorResponse, 55.8). The fields are validated here, so enumerating them cannot fail.
    /// </summary>
    public static bool TryReadErrorResponse(in ReadOnlySequence<byte> body, out ErrorResponseMessage message)
    {
        var reader = new SequenceReader<byte>(body);
        while (reader.TryRead(out byte type))
        {
            if (type == 0)
            {
                if (!reader.End)
                {
                    break;
                }

                message = new ErrorResponseMessage(body);
                return true;
            }

            if (!reader.TryAdvanceTo(0))
            {
                break;
            }
        }

        message = default;
        return false;
    }

    /// <summary>ParameterDescription: Int16 parameter count, Int32[count] type oids (55.7 ParameterDescription).</summary>
    public static bool TryReadParameterDescription(in ReadOnlySequence<byte> body, out OidList parameterTypes)
    {
        var reader = new SequenceReader<byte>(body);
        if (WireReader.TryReadCount16(ref reader, out int count)
            && WireReader.TryReadBlock(ref reader, count * 4L, out var types)
            && reader.End)
        {
            parameterTypes = new OidList(count, types);
            return true;
        }

        parameterTypes = default;
        return false;
    }

    /// <summary>
    /// NegotiateProtocolVersion: Int32 newest minor version supported, Int32 count of unrecognized "_pq_." options,
    /// then their names as Strings (55.7 NegotiateProtocolVersion). Servers send the whole version number
    /// (major in the high 16 bits), so <paramref name="newestVersion"/> is returned as sent; its minor part is
    /// <c>newestVersion &amp; 0xFFFF</c>.
    /// </summary>
    public static bool TryReadNegotiateProtocolVersion(in ReadOnlySequence<byte> body, out int newestVersion, out CStringList unrecognizedOptions)
    {
        var reader = new SequenceReader<byte>(body);
        if (reader.TryReadBigEndian(out newestVersion)
            && reader.TryReadBigEndian(out int count)
            && count >= 0
            && TryReadCStrings(ref reader, count, out unrecognizedOptions)
            && reader.End)
        {
            return true;
        }

        newestVersion = 0;
        unrecognizedOptions = default;
        return false;
    }

    /// <summary>FunctionCallResponse: Int32 result length (-1 for NULL), then the result bytes (55.7 FunctionCallResponse).</summary>
    public static bool TryReadFunctionCallResponse(in ReadOnlySequence<byte> body, out FieldValue result)
    {
        var reader = new SequenceReader<byte>(body);
        if (reader.TryReadBigEndian(out int length) && length >= -1 && reader.Remaining == Math.Max(length, 0))
        {
            result = length < 0 ? FieldValue.Null : new FieldValue(length, reader.UnreadSequence);
            return true;
        }

        result = default;
        return false;
    }

    /// <summary>
    /// BackendKeyData without copying: Int32 process id, then the secret key, 4 bytes in protocol 3.0 and up to
    /// 256 bytes in 3.2 (55.7 BackendKeyData).
    /// </summary>
    public static bool TryReadBackendKeyData(in ReadOnlySequence<byte> body, out int processId, out ReadOnlySequence<byte> secretKey)
    {
        var reader = new SequenceReader<byte>(body);
        if (reader.TryReadBigEndian(out processId) && reader.Remaining is >= 4 and <= 256)
        {
            secretKey = reader.UnreadSequence;
            return true;
        }

        processId = 0;
        secretKey = default;
        return false;
    }

    /// <summary>
    /// The data of AuthenticationSASL (after the Int32 code, as <see cref="BackendMessageReader.TryReadAuthentication"/>
    /// returns it): mechanism names as Strings, ended by a zero byte (55.7 AuthenticationSASL).
    /// </summary>
    public static bool TryReadSaslMechanisms(in ReadOnlySequence<byte> data, out CStringList mechanisms)
    {
        var reader = new SequenceReader<byte>(data);
        var start = reader.Position;
        int count = 0;
        while (reader.TryPeek(out byte next))
        {
            if (next == 0)
            {
                var items = reader.Sequence.Slice(start, reader.Position);
                reader.Advance(1);
                if (reader.End)
                {
                    mechanisms = new CStringList(count, items);
                    return true;
                }

                break;
            }

            if (!reader.TryAdvanceTo(0))
            {
                break;
            }

            count++;
        }

        mechanisms = default;
        return false;
    }

    private static bool TryReadCStrings(ref SequenceReader<byte> reader, int count, out CStringList strings)
    {
        var start = reader.Position;
        for (int i = 0; i < count; i++)
        {
            if (!reader.TryAdvanceTo(0))
            {
                strings = default;
                return false;
            }
        }

        strings = new CStringList(count, reader.Sequence.Slice(start, reader.Position));
        return true;
    }
}
