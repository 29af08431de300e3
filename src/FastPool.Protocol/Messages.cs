using System.Text;

namespace FastPool.Protocol;

/// <summary>Writers for the messages FastPool originates itself (PostgreSQL docs, 55.7 "Message Formats").</summary>
public static class Messages
{
    /// <summary>ReadyForQuery, idle: the most common message FastPool sends itself, encoded once.</summary>
    public static ReadOnlyMemory<byte> ReadyForQueryIdle { get; } = new byte[] { (byte)'Z', 0, 0, 0, 5, (byte)'I' };

    /// <summary>SSLRequest / GSSENCRequest refused (55.2.10, 55.2.11): a single 'N' byte, then the client continues in plain text.</summary>
    public static ReadOnlyMemory<byte> EncryptionRefused { get; } = new byte[] { (byte)'N' };

    /// <summary>SSLRequest accepted (55.2.10): a single 'S' byte, then the client starts the TLS handshake.</summary>
    public static ReadOnlyMemory<byte> EncryptionAccepted { get; } = new byte[] { (byte)'S' };

    /// <summary>SSLRequest (55.7): length 8 and the code 80877103 (1234 in the high 16 bits, 5679 in the low).</summary>
    public static ReadOnlyMemory<byte> SslRequest { get; } = new byte[] { 0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F };

    /// <summary>Terminate, sent to a server before closing a connection FastPool no longer wants.</summary>
    public static ReadOnlyMemory<byte> Terminate { get; } = new byte[] { (byte)'X', 0, 0, 0, 4 };

    public static MessageBuilder AuthenticationOk(this MessageBuilder b) =>
        b.StartMessage((byte)BackendCode.Authentication).WriteInt32((int)AuthenticationCode.Ok).EndMessage();

    public static MessageBuilder ParameterStatus(this MessageBuilder b, string name, string value) =>
        b.StartMessage((byte)BackendCode.ParameterStatus).WriteCString(name).WriteCString(value).EndMessage();

    public static MessageBuilder BackendKeyData(this MessageBuilder b, int processId, int secretKey) =>
        b.StartMessage((byte)BackendCode.BackendKeyData).WriteInt32(processId).WriteInt32(secretKey).EndMessage();

    public static MessageBuilder ReadyForQuery(this MessageBuilder b, TransactionStatus status) =>
        b.StartMessage((byte)BackendCode.ReadyForQuery).WriteByte((byte)status).EndMessage();

    /// <summary>
    /// ErrorResponse (or NoticeResponse) with the fields every client shows: S (localized severity), V (severity),
    /// C (SQLSTATE), M (message), and D (detail) when given (55.8 "Error and Notice Message Fields").
    /// </summary>
    public static MessageBuilder ErrorResponse(this MessageBuilder b, string severity, string sqlState, string message, string? detail = null, bool notice = false)
    {
        b.StartMessage(notice ? (byte)BackendCode.NoticeResponse : (byte)BackendCode.ErrorResponse)
            .WriteByte((byte)'S').WriteCString(severity)
            .WriteByte((byte)'V').WriteCString(severity)
            .WriteByte((byte)'C').WriteCString(sqlState)
            .WriteByte((byte)'M').WriteCString(message);
        if (detail is not null)
        {
            b.WriteByte((byte)'D').WriteCString(detail);
        }

        return b.WriteByte(0).EndMessage();
    }

    /// <summary>NegotiateProtocolVersion (55.7): the newest minor version we support and the options we did not recognise.</summary>
    public static MessageBuilder NegotiateProtocolVersion(this MessageBuilder b, int newestMinorSupported, IReadOnlyList<string> unrecognizedOptions)
    {
        b.StartMessage((byte)BackendCode.NegotiateProtocolVersion)
            .WriteInt32((3 << 16) | newestMinorSupported)
            .WriteInt32(unrecognizedOptions.Count);
        foreach (var option in unrecognizedOptions)
        {
            b.WriteCString(option);
        }

        return b.EndMessage();
    }

    /// <summary>StartupMessage for protocol 3.0 with the given parameters (55.7).</summary>
    public static MessageBuilder StartupMessage(this MessageBuilder b, IEnumerable<KeyValuePair<string, string>> parameters)
    {
        b.StartUntypedMessage().WriteInt32(StartupCodes.ProtocolVersion3);
        foreach (var kv in parameters)
        {
            b.WriteCString(kv.Key).WriteCString(kv.Value);
        }

        return b.WriteByte(0).EndMessage();
    }

    /// <summary>CancelRequest (55.2.8), sent on a fresh connection to the server.</summary>
    public static MessageBuilder CancelRequest(this MessageBuilder b, int processId, ReadOnlySpan<byte> secretKey) =>
        b.StartUntypedMessage().WriteInt32(StartupCodes.CancelRequest).WriteInt32(processId).WriteBytes(secretKey).EndMessage();

    public static MessageBuilder Query(this MessageBuilder b, string sql) =>
        b.StartMessage((byte)FrontendCode.Query).WriteCString(sql).EndMessage();

    /// <summary>
    /// Parse, Bind, Execute and Sync for one unnamed statement with text parameters and text results
    /// (55.2.3 "Extended Query"): values travel apart from the SQL, so no quoting can change the statement.
    /// </summary>
    public static MessageBuilder ExtendedQuery(this MessageBuilder b, string sql, ReadOnlySpan<string> parameters)
    {
        // Parse: unnamed statement, no parameter types given (the server infers them).
        b.StartMessage((byte)FrontendCode.Parse).WriteCString(string.Empty).WriteCString(sql).WriteInt16(0).EndMessage();

        // Bind: unnamed portal and statement; no format codes means all parameters and results in text.
        b.StartMessage((byte)FrontendCode.Bind).WriteCString(string.Empty).WriteCString(string.Empty).WriteInt16(0)
            .WriteInt16((short)parameters.Length);
        foreach (var value in parameters)
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            b.WriteInt32(bytes.Length).WriteBytes(bytes);
        }

        b.WriteInt16(0).EndMessage();

        // Execute the unnamed portal with no row limit, then Sync for ReadyForQuery.
        b.StartMessage((byte)FrontendCode.Execute).WriteCString(string.Empty).WriteInt32(0).EndMessage();
        return b.StartMessage((byte)FrontendCode.Sync).EndMessage();
    }

    /// <summary>PasswordMessage (55.7), carrying a cleartext or md5 password.</summary>
    public static MessageBuilder PasswordMessage(this MessageBuilder b, string password) =>
        b.StartMessage((byte)FrontendCode.Password).WriteCString(password).EndMessage();

    /// <summary>Encodes a whole message once, for constants.</summary>
    public static byte[] Encode(Func<MessageBuilder, MessageBuilder> write) => write(new MessageBuilder()).Written.ToArray();

    /// <summary>md5 password hashing as PostgreSQL does it: "md5" + md5(md5(password + user) + salt) (55.3.3 / 20.5).</summary>
    public static string Md5Password(string user, string password, ReadOnlySpan<byte> salt)
    {
        string inner = password.StartsWith("md5", StringComparison.Ordinal) && password.Length == 35
            ? password.Substring(3)
            : Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(Encoding.UTF8.GetBytes(password + user)));
        var innerBytes = Encoding.ASCII.GetBytes(inner);
        var buf = new byte[innerBytes.Length + salt.Length];
        innerBytes.CopyTo(buf, 0);
        salt.CopyTo(buf.AsSpan(innerBytes.Length));
        return "md5" + Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(buf));
    }
}
