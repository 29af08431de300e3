namespace FastPool.Protocol;

// Message type bytes, as character values. PostgreSQL docs, "55.7 Message Formats".

/// <summary>Messages a client (frontend) sends after the startup packet.</summary>
public enum FrontendCode : byte
{
    Bind = (byte)'B',
    Close = (byte)'C',
    CopyData = (byte)'d',
    CopyDone = (byte)'c',
    CopyFail = (byte)'f',
    Describe = (byte)'D',
    Execute = (byte)'E',
    Flush = (byte)'H',
    FunctionCall = (byte)'F',
    Parse = (byte)'P',
    Query = (byte)'Q',
    Sync = (byte)'S',
    Terminate = (byte)'X',

    /// <summary>PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse all share 'p'.</summary>
    Password = (byte)'p',
}

/// <summary>Messages a server (backend) sends.</summary>
public enum BackendCode : byte
{
    Authentication = (byte)'R',
    BackendKeyData = (byte)'K',
    BindComplete = (byte)'2',
    CloseComplete = (byte)'3',
    CommandComplete = (byte)'C',
    CopyData = (byte)'d',
    CopyDone = (byte)'c',
    CopyInResponse = (byte)'G',
    CopyOutResponse = (byte)'H',
    CopyBothResponse = (byte)'W',
    DataRow = (byte)'D',
    EmptyQueryResponse = (byte)'I',
    ErrorResponse = (byte)'E',
    FunctionCallResponse = (byte)'V',
    NegotiateProtocolVersion = (byte)'v',
    NoData = (byte)'n',
    NoticeResponse = (byte)'N',
    NotificationResponse = (byte)'A',
    ParameterDescription = (byte)'t',
    ParameterStatus = (byte)'S',
    ParseComplete = (byte)'1',
    PortalSuspended = (byte)'s',
    ReadyForQuery = (byte)'Z',
    RowDescription = (byte)'T',
}

/// <summary>Sub-codes of the Authentication ('R') message (55.7, AuthenticationOk ... AuthenticationSASLFinal).</summary>
public enum AuthenticationCode
{
    Ok = 0,
    KerberosV5 = 2,
    CleartextPassword = 3,
    Md5Password = 5,
    Gss = 7,
    GssContinue = 8,
    Sspi = 9,
    Sasl = 10,
    SaslContinue = 11,
    SaslFinal = 12,
}

/// <summary>Transaction status byte of ReadyForQuery (55.7).</summary>
public enum TransactionStatus : byte
{
    Idle = (byte)'I',
    InTransaction = (byte)'T',
    Failed = (byte)'E',
}

/// <summary>
/// The codes that replace a protocol version in the first (untyped) packet a client sends
/// (55.2.1 "Start-up", 55.2.10 "SSL Session Encryption", 55.2.11 "GSSAPI Session Encryption", 55.2.8 "Canceling Requests").
/// </summary>
public static class StartupCodes
{
    public const int ProtocolVersion3 = 3 << 16;
    public const int CancelRequest = (1234 << 16) | 5678;
    public const int SslRequest = (1234 << 16) | 5679;
    public const int GssEncRequest = (1234 << 16) | 5680;
}
