using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace FastPool.Protocol;

public enum StartupPacketKind
{
    Startup,
    SslRequest,
    GssEncRequest,
    CancelRequest,
}

public enum StartupParseStatus
{
    /// <summary>The packet is complete and valid.</summary>
    Ok,

    /// <summary>More bytes are needed.</summary>
    Incomplete,

    /// <summary>The length is out of range or the body is malformed (08P01).</summary>
    Malformed,

    /// <summary>A major protocol version other than 3 (0A000, as PostgreSQL answers).</summary>
    UnsupportedVersion,

    /// <summary>Well formed, but without a user name or with an empty one (28000, as PostgreSQL answers).</summary>
    NoUser,
}

/// <summary>
/// The untyped first packet: Int32 length, Int32 code or protocol version, then a body
/// (PostgreSQL docs 55.7: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest). Parsed once per
/// connection, so it may allocate the parameter strings.
/// </summary>
public sealed class StartupPacket
{
    /// <summary>
    /// PostgreSQL's own limit (MAX_STARTUP_PACKET_LENGTH, 10000) applies to the packet without its length word,
    /// so the length field may be up to 10004.
    /// </summary>
    public const int MaxLength = 10000 + 4;

    private StartupPacket(StartupPacketKind kind, int version)
    {
        Kind = kind;
        ProtocolVersion = version;
    }

    public StartupPacketKind Kind { get; }

    /// <summary>Major in the high 16 bits, minor in the low 16 bits.</summary>
    public int ProtocolVersion { get; }

    public int MajorVersion => ProtocolVersion >> 16;

    public int MinorVersion => ProtocolVersion & 0xFFFF;

    /// <summary>Startup parameters in the order sent, excluding "_pq_." protocol options.</summary>
    public List<KeyValuePair<string, string>> Parameters { get; } = [];

    /// <summary>"_pq_.*" protocol options the client asked for; FastPool supports none, so they are reported back in NegotiateProtocolVersion.</summary>
    public List<string> ProtocolOptions { get; } = [];

    public int CancelProcessId { get; private set; }

    /// <summary>The cancel key as sent; 4 bytes in protocol 3.0, longer in 3.2.</summary>
    public byte[] CancelSecretKey { get; private set; } = [];

    public string? GetParameter(string name)
    {
        foreach (var kv in Parameters)
        {
            if (kv.Key == name)
            {
                return kv.Value;
            }
        }

        return null;
    }

    /// <summary>Parses the first packet; on Ok, <paramref name="consumed"/> is its whole length.</summary>
    public static StartupParseStatus TryParse(in ReadOnlySequence<byte> buffer, out StartupPacket? packet, out long consumed)
    {
        packet = null;
        consumed = 0;
        if (buffer.Length < 4)
        {
            return StartupParseStatus.Incomplete;
        }

        // Judge the length as soon as it is there, so an impossible one is refused at once.
        Span<byte> lengthBytes = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(lengthBytes);
        int declared = BinaryPrimitives.ReadInt32BigEndian(lengthBytes);
        if (declared < 8 || declared > MaxLength)
        {
            return StartupParseStatus.Malformed;
        }

        if (buffer.Length < 8)
        {
            return StartupParseStatus.Incomplete;
        }

        Span<byte> head = stackalloc byte[8];
        buffer.Slice(0, 8).CopyTo(head);
        int length = BinaryPrimitives.ReadInt32BigEndian(head);
        int code = BinaryPrimitives.ReadInt32BigEndian(head.Slice(4));
        if (length < 8 || length > MaxLength)
        {
            return StartupParseStatus.Malformed;
        }

        if (buffer.Length < length)
        {
            return StartupParseStatus.Incomplete;
        }

        consumed = length;
        var body = buffer.Slice(8, length - 8);
        switch (code)
        {
            case StartupCodes.SslRequest:
                packet = new StartupPacket(StartupPacketKind.SslRequest, code);
                return length == 8 ? StartupParseStatus.Ok : StartupParseStatus.Malformed;
            case StartupCodes.GssEncRequest:
                packet = new StartupPacket(StartupPacketKind.GssEncRequest, code);
                return length == 8 ? StartupParseStatus.Ok : StartupParseStatus.Malformed;
            case StartupCodes.CancelRequest:
                return ParseCancel(body, out packet);
        }

        if (code >> 16 != 3)
        {
            packet = new StartupPacket(StartupPacketKind.Startup, code);
            return StartupParseStatus.UnsupportedVersion;
        }

        var startup = new StartupPacket(StartupPacketKind.Startup, code);
        var status = ParseParameters(body, startup);
        packet = startup;
        return status;
    }

    private static StartupParseStatus ParseCancel(ReadOnlySequence<byte> body, out StartupPacket? packet)
    {
        packet = null;
        // Protocol 3.0 sends a 4-byte key; 3.2 allows up to 256 bytes (55.7 CancelRequest).
        if (body.Length < 8 || body.Length > 4 + 256)
        {
            return StartupParseStatus.Malformed;
        }

        var bytes = body.ToArray();
        packet = new StartupPacket(StartupPacketKind.CancelRequest, StartupCodes.CancelRequest)
        {
            CancelProcessId = BinaryPrimitives.ReadInt32BigEndian(bytes),
            CancelSecretKey = bytes.AsSpan(4).ToArray(),
        };
        return StartupParseStatus.Ok;
    }

    private static StartupParseStatus ParseParameters(ReadOnlySequence<byte> body, StartupPacket packet)
    {
        // Name/value pairs of null-terminated strings, the list closed by one extra zero byte.
        var reader = new SequenceReader<byte>(body);
        while (true)
        {
            if (!reader.TryReadTo(out ReadOnlySequence<byte> name, 0))
            {
                return StartupParseStatus.Malformed;
            }

            if (name.IsEmpty)
            {
                return reader.End ? Validate(packet) : StartupParseStatus.Malformed;
            }

            if (!reader.TryReadTo(out ReadOnlySequence<byte> value, 0))
            {
                return StartupParseStatus.Malformed;
            }

            string key = Encoding.UTF8.GetString(name);
            if (key.StartsWith("_pq_.", StringComparison.Ordinal))
            {
                packet.ProtocolOptions.Add(key);
                continue;
            }

            packet.Parameters.Add(new(key, Encoding.UTF8.GetString(value)));
        }
    }

    private static StartupParseStatus Validate(StartupPacket packet)
    {
        // "user" is required (55.7 StartupMessage).
        return string.IsNullOrEmpty(packet.GetParameter("user")) ? StartupParseStatus.NoUser : StartupParseStatus.Ok;
    }
}
