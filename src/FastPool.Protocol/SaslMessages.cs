namespace FastPool.Protocol;

/// <summary>
/// Writers for the SASL messages of PostgreSQL's authentication exchange (PostgreSQL docs 55.3 "SASL
/// Authentication", formats in 55.7): AuthenticationSASL / SASLContinue / SASLFinal towards clients,
/// SASLInitialResponse and SASLResponse (both type 'p') towards servers. The readers are in
/// <see cref="FrontendMessageReader"/> and <see cref="BackendMessages"/>.
/// </summary>
public static class SaslMessages
{
    /// <summary>AuthenticationSASL: the mechanisms in the server's order of preference, each a String, then the empty String that ends the list.</summary>
    public static MessageBuilder AuthenticationSasl(this MessageBuilder b, params ReadOnlySpan<string> mechanisms)
    {
        b.StartMessage((byte)BackendCode.Authentication).WriteInt32((int)AuthenticationCode.Sasl);
        foreach (var mechanism in mechanisms)
        {
            b.WriteCString(mechanism);
        }

        return b.WriteByte(0).EndMessage();
    }

    public static MessageBuilder AuthenticationSaslContinue(this MessageBuilder b, ReadOnlySpan<byte> data) =>
        b.StartMessage((byte)BackendCode.Authentication).WriteInt32((int)AuthenticationCode.SaslContinue).WriteBytes(data).EndMessage();

    public static MessageBuilder AuthenticationSaslFinal(this MessageBuilder b, ReadOnlySpan<byte> data) =>
        b.StartMessage((byte)BackendCode.Authentication).WriteInt32((int)AuthenticationCode.SaslFinal).WriteBytes(data).EndMessage();

    /// <summary>SASLInitialResponse: mechanism, Int32 length of the initial response (-1 for none), the response.</summary>
    public static MessageBuilder SaslInitialResponse(this MessageBuilder b, string mechanism, byte[]? data)
    {
        b.StartMessage((byte)FrontendCode.Password).WriteCString(mechanism);
        if (data is null)
        {
            return b.WriteInt32(-1).EndMessage();
        }

        return b.WriteInt32(data.Length).WriteBytes(data).EndMessage();
    }

    /// <summary>SASLResponse: the mechanism data, nothing else.</summary>
    public static MessageBuilder SaslResponse(this MessageBuilder b, ReadOnlySpan<byte> data) =>
        b.StartMessage((byte)FrontendCode.Password).WriteBytes(data).EndMessage();
}
