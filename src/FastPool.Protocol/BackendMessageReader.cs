using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace FastPool.Protocol;

/// <summary>
/// Readers for the bodies of server messages that FastPool must look inside (55.7). Each takes the body
/// only (after the 5-byte header) as the sequence slice it arrived in; none copies a body.
/// </summary>
public static class BackendMessageReader
{
    /// <summary>ParameterStatus: name and value, both null-terminated strings. Rare (login, SET of a reported GUC), so it returns strings.</summary>
    public static bool TryReadParameterStatus(in ReadOnlySequence<byte> body, out string name, out string value)
    {
        var reader = new SequenceReader<byte>(body);
        if (reader.TryReadTo(out ReadOnlySequence<byte> n, 0) && reader.TryReadTo(out ReadOnlySequence<byte> v, 0))
        {
            name = Encoding.UTF8.GetString(n);
            value = Encoding.UTF8.GetString(v);
            return true;
        }

        name = value = string.Empty;
        return false;
    }

    /// <summary>ReadyForQuery's single status byte; a body of any other length is malformed and reads as Failed.</summary>
    public static TransactionStatus ReadReadyForQuery(in ReadOnlySequence<byte> body)
    {
        var reader = new SequenceReader<byte>(body);
        return body.Length == 1 && reader.TryRead(out byte status) ? (TransactionStatus)status : TransactionStatus.Failed;
    }

    public static bool TryReadAuthentication(in ReadOnlySequence<byte> body, out AuthenticationCode code, out ReadOnlySequence<byte> data)
    {
        if (body.Length < 4)
        {
            code = default;
            data = default;
            return false;
        }

        Span<byte> tmp = stackalloc byte[4];
        body.Slice(0, 4).CopyTo(tmp);
        code = (AuthenticationCode)BinaryPrimitives.ReadInt32BigEndian(tmp);
        data = body.Slice(4);
        return true;
    }

    /// <summary>BackendKeyData: process id and a secret key (4 bytes in 3.0, up to 256 in 3.2).</summary>
    public static bool TryReadBackendKeyData(in ReadOnlySequence<byte> body, out int processId, out byte[] secretKey)
    {
        if (body.Length < 8)
        {
            processId = 0;
            secretKey = [];
            return false;
        }

        var bytes = body.ToArray();
        processId = BinaryPrimitives.ReadInt32BigEndian(bytes);
        secretKey = bytes.AsSpan(4).ToArray();
        return true;
    }

    /// <summary>The fields of an ErrorResponse or NoticeResponse (55.8); allocates, so only for errors FastPool handles itself.</summary>
    public static ErrorFields ReadErrorFields(in ReadOnlySequence<byte> body)
    {
        var fields = new ErrorFields();
        var reader = new SequenceReader<byte>(body);
        while (reader.TryRead(out byte type) && type != 0)
        {
            if (!reader.TryReadTo(out ReadOnlySequence<byte> text, 0))
            {
                break;
            }

            switch ((char)type)
            {
                case 'V': fields.Severity = Encoding.UTF8.GetString(text); break;
                case 'S': fields.Severity ??= Encoding.UTF8.GetString(text); break;
                case 'C': fields.Code = Encoding.UTF8.GetString(text); break;
                case 'M': fields.Message = Encoding.UTF8.GetString(text); break;
                case 'D': fields.Detail = Encoding.UTF8.GetString(text); break;
            }
        }

        return fields;
    }
}

public sealed class ErrorFields
{
    public string? Severity { get; set; }

    public string Code { get; set; } = SqlState.InternalError;

    public string Message { get; set; } = string.Empty;

    public string? Detail { get; set; }

    public override string ToString() => $"{Severity}: {Message} (SQLSTATE {Code})";
}
