using System.Buffers;

namespace FastPool.Protocol;

/// <summary>
/// Readers for the bodies of client messages (55.7 "Message Formats"). Each takes the body only (after the
/// 5-byte header, as <see cref="MessageFramer"/> returns it) and returns strings and bytes as slices of it,
/// so nothing is copied or allocated. A reader returns false when the body is truncated, has bytes left over,
/// or breaks a rule of its message; PostgreSQL answers those with 08P01.
/// </summary>
public static class FrontendMessageReader
{
    /// <summary>Sync, Flush, CopyDone and Terminate carry no body (55.7).</summary>
    public static bool HasEmptyBody(FrontendCode code) =>
        code is FrontendCode.Sync or FrontendCode.Flush or FrontendCode.CopyDone or FrontendCode.Terminate;

    /// <summary>Validates a message that must have no body (<see cref="HasEmptyBody"/>).</summary>
    public static bool IsValidEmptyBody(in ReadOnlySequence<byte> body) => body.IsEmpty;

    /// <summary>Query: one String, the SQL text, possibly several statements (55.7 Query).</summary>
    public static bool TryReadQuery(in ReadOnlySequence<byte> body, out ReadOnlySequence<byte> sql) => TryReadSingleString(body, out sql);

    /// <summary>Parse: String statement, String query, Int16 count, Int32[count] type oids (55.7 Parse).</summary>
    public static bool TryReadParse(in ReadOnlySequence<byte> body, out ParseMessage message)
    {
        var reader = new SequenceReader<byte>(body);
        if (WireReader.TryReadCString(ref reader, out var statement)
            && WireReader.TryReadCString(ref reader, out var query)
            && WireReader.TryReadCount16(ref reader, out int count)
            && WireReader.TryReadBlock(ref reader, count * 4L, out var types)
            && reader.End)
        {
            message = new ParseMessage(statement, query, new OidList(count, types));
            return true;
        }

        message = default;
        return false;
    }

    /// <summary>
    /// Bind: String portal, String statement, Int16 format count + Int16[] formats, Int16 value count + values
    /// (Int32 length, -1 for NULL, then bytes), Int16 result format count + Int16[] formats (55.7 Bind).
    /// </summary>
    public static bool TryReadBind(in ReadOnlySequence<byte> body, out BindMessage message)
    {
        var reader = new SequenceReader<byte>(body);
        if (WireReader.TryReadCString(ref reader, out var portal)
            && WireReader.TryReadCString(ref reader, out var statement)
            && TryReadFormatCodes(ref reader, out var parameterFormats)
            && WireReader.TryReadCount16(ref reader, out int count)
            && WireReader.TryReadValues(ref reader, count, out var values)
            && TryReadFormatCodes(ref reader, out var resultFormats)
            && reader.End)
        {
            message = new BindMessage(portal, statement, parameterFormats, new FieldValueList(count, values), resultFormats);
            return true;
        }

        message = default;
        return false;
    }

    /// <summary>Describe: Byte1 'S' (statement) or 'P' (portal), then the String name (55.7 Describe).</summary>
    public static bool TryReadDescribe(in ReadOnlySequence<byte> body, out TargetKind kind, out ReadOnlySequence<byte> name) =>
        TryReadTarget(body, out kind, out name);

    /// <summary>Close: Byte1 'S' (statement) or 'P' (portal), then the String name (55.7 Close).</summary>
    public static bool TryReadClose(in ReadOnlySequence<byte> body, out TargetKind kind, out ReadOnlySequence<byte> name) =>
        TryReadTarget(body, out kind, out name);

    /// <summary>Execute: String portal, Int32 maximum rows, 0 meaning no limit (55.7 Execute).</summary>
    public static bool TryReadExecute(in ReadOnlySequence<byte> body, out ReadOnlySequence<byte> portal, out int maxRows)
    {
        var reader = new SequenceReader<byte>(body);
        if (WireReader.TryReadCString(ref reader, out portal) && reader.TryReadBigEndian(out maxRows) && reader.End)
        {
            return true;
        }

        portal = default;
        maxRows = 0;
        return false;
    }

    /// <summary>CopyData: the body is the data, any length, not aligned to rows (55.7 CopyData).</summary>
    public static ReadOnlySequence<byte> ReadCopyData(in ReadOnlySequence<byte> body) => body;

    /// <summary>CopyFail: one String, the reason the COPY failed (55.7 CopyFail).</summary>
    public static bool TryReadCopyFail(in ReadOnlySequence<byte> body, out ReadOnlySequence<byte> message) => TryReadSingleString(body, out message);

    /// <summary>
    /// FunctionCall: Int32 function oid, Int16 format count + Int16[] formats, Int16 argument count + arguments
    /// (Int32 length, -1 for NULL, then bytes), Int16 result format (55.7 FunctionCall).
    /// </summary>
    public static bool TryReadFunctionCall(in ReadOnlySequence<byte> body, out FunctionCallMessage message)
    {
        var reader = new SequenceReader<byte>(body);
        if (WireReader.TryReadOid(ref reader, out uint oid)
            && TryReadFormatCodes(ref reader, out var formats)
            && WireReader.TryReadCount16(ref reader, out int count)
            && WireReader.TryReadValues(ref reader, count, out var values)
            && reader.TryReadBigEndian(out short resultFormat)
            && reader.End)
        {
            message = new FunctionCallMessage(oid, formats, new FieldValueList(count, values), (FormatCode)resultFormat);
            return true;
        }

        message = default;
        return false;
    }

    /// <summary>
    /// PasswordMessage: one String, the password, cleartext or md5-hashed (55.7 PasswordMessage). The 'p' code is
    /// shared with the SASL and GSS responses; which one it is follows from the authentication request sent.
    /// </summary>
    public static bool TryReadPasswordMessage(in ReadOnlySequence<byte> body, out ReadOnlySequence<byte> password) => TryReadSingleString(body, out password);

    /// <summary>
    /// SASLInitialResponse: String mechanism, Int32 length of the initial client response (-1 when there is none),
    /// then its bytes (55.7 SASLInitialResponse). <paramref name="initialResponse"/> is NULL when none was sent.
    /// </summary>
    public static bool TryReadSaslInitialResponse(in ReadOnlySequence<byte> body, out ReadOnlySequence<byte> mechanism, out FieldValue initialResponse)
    {
        var reader = new SequenceReader<byte>(body);
        if (WireReader.TryReadCString(ref reader, out mechanism)
            && reader.TryReadBigEndian(out int length)
            && length >= -1)
        {
            if (length == -1 && reader.End)
            {
                initialResponse = FieldValue.Null;
                return true;
            }

            if (length >= 0 && reader.Remaining == length)
            {
                initialResponse = new FieldValue(length, reader.UnreadSequence);
                return true;
            }
        }

        initialResponse = default;
        return false;
    }

    /// <summary>SASLResponse: the body is the mechanism's data, e.g. SCRAM's client-final-message (55.7 SASLResponse).</summary>
    public static ReadOnlySequence<byte> ReadSaslResponse(in ReadOnlySequence<byte> body) => body;

    /// <summary>GSSResponse: the body is the GSSAPI or SSPI token (55.7 GSSResponse).</summary>
    public static ReadOnlySequence<byte> ReadGssResponse(in ReadOnlySequence<byte> body) => body;

    private static bool TryReadSingleString(in ReadOnlySequence<byte> body, out ReadOnlySequence<byte> value)
    {
        var reader = new SequenceReader<byte>(body);
        if (WireReader.TryReadCString(ref reader, out value) && reader.End)
        {
            return true;
        }

        value = default;
        return false;
    }

    private static bool TryReadTarget(in ReadOnlySequence<byte> body, out TargetKind kind, out ReadOnlySequence<byte> name)
    {
        var reader = new SequenceReader<byte>(body);
        if (reader.TryRead(out byte type)
            && type is (byte)TargetKind.Statement or (byte)TargetKind.Portal
            && WireReader.TryReadCString(ref reader, out name)
            && reader.End)
        {
            kind = (TargetKind)type;
            return true;
        }

        kind = default;
        name = default;
        return false;
    }

    private static bool TryReadFormatCodes(ref SequenceReader<byte> reader, out FormatCodeList formats)
    {
        if (WireReader.TryReadCount16(ref reader, out int count) && WireReader.TryReadBlock(ref reader, count * 2L, out var items))
        {
            formats = new FormatCodeList(count, items);
            return true;
        }

        formats = default;
        return false;
    }
}
