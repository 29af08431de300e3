using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace FastPool.Protocol.Scram;

/// <summary>The parts of a client-first-message (RFC 5802 section 7) the server needs later.</summary>
/// <param name="Gs2Header">"n,,", "y,," or "p=tls-server-end-point,,": echoed back base64-encoded (with the channel
/// binding data after a "p" header) in the client-final-message's c= attribute.</param>
/// <param name="Bare">client-first-message-bare, the first part of AuthMessage.</param>
/// <param name="Nonce">The client's nonce (r=).</param>
public sealed record ScramClientFirst(string Gs2Header, string Bare, string Nonce)
{
    /// <summary>True for a "p=" header: the client binds the exchange to the channel (SCRAM-SHA-256-PLUS).</summary>
    public bool BindsChannel => Gs2Header[0] == 'p';
}

/// <summary>
/// Parsers and writers for the SCRAM attribute messages (RFC 5802 section 7) exchanged inside PostgreSQL's SASL
/// messages (PostgreSQL docs 55.3 "SASL Authentication"). Parsers accept exactly what the RFC allows and report a
/// short reason otherwise; the reason never echoes the message, since it carries nonces and proofs.
/// </summary>
public static class ScramMessages
{
    /// <summary>The only gs2 header FastPool sends: no channel binding, no authzid (55.3.1: PostgreSQL ignores authzid).</summary>
    public const string Gs2HeaderNoBinding = "n,,";

    /// <summary>The client could bind, but the server offered no -PLUS mechanism (RFC 5802 section 6; 55.3.1).</summary>
    public const string Gs2HeaderBindingNotOffered = "y,,";

    /// <summary>SCRAM-SHA-256-PLUS with the one channel binding type PostgreSQL supports (55.3.1).</summary>
    public const string Gs2HeaderServerEndPoint = "p=tls-server-end-point,,";

    /// <summary>The channel binding type of <see cref="Gs2HeaderServerEndPoint"/> (RFC 5929 section 4).</summary>
    private const string ChannelBindingType = "tls-server-end-point";

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Decodes a SCRAM message; invalid UTF-8 or an embedded NUL is malformed.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> bytes, [NotNullWhen(true)] out string? text)
    {
        text = null;
        if (bytes.IndexOf((byte)0) >= 0)
        {
            return false;
        }

        try
        {
            text = s_strictUtf8.GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    // ---- server side: FastPool checks a client -------------------------------------------------

    /// <summary>
    /// Parses a client-first-message when SCRAM-SHA-256 was selected and SCRAM-SHA-256-PLUS not offered: channel
    /// binding 'p' is refused, 'y' (the client could bind but thinks the server cannot) is right.
    /// </summary>
    public static bool TryParseClientFirst(string message, [NotNullWhen(true)] out ScramClientFirst? result, [NotNullWhen(false)] out string? error) =>
        TryParseClientFirst(message, plusSelected: false, plusOffered: false, out result, out error);

    /// <summary>
    /// Parses a client-first-message. The gs2 channel-binding flag must agree with the mechanism (RFC 5802 section 6,
    /// PostgreSQL docs 55.3.1): SCRAM-SHA-256-PLUS needs "p=tls-server-end-point", the only type PostgreSQL
    /// supports; SCRAM-SHA-256 takes "n", or "y" only when -PLUS was not offered ("y" with -PLUS offered means
    /// someone between client and server removed it from the list: a downgrade, refused). An authorization
    /// identity (a=) and mandatory extensions (m=) are not supported, as in PostgreSQL.
    /// </summary>
    public static bool TryParseClientFirst(string message, bool plusSelected, bool plusOffered,
        [NotNullWhen(true)] out ScramClientFirst? result, [NotNullWhen(false)] out string? error)
    {
        result = null;
        int flagEnd = message.IndexOf(',');
        if (flagEnd < 1 || flagEnd + 1 >= message.Length)
        {
            error = "client-first-message too short";
            return false;
        }

        var flag = message.AsSpan(0, flagEnd);
        switch (flag[0])
        {
            case 'p' when flag.Length > 2 && flag[1] == '=':
                if (!plusSelected)
                {
                    error = plusOffered
                        ? "the client selected SCRAM-SHA-256 without channel binding, but sent channel binding data"
                        : "the client asked for channel binding, which was not offered";
                    return false;
                }

                if (!flag[2..].SequenceEqual(ChannelBindingType))
                {
                    error = "unsupported channel-binding type (only tls-server-end-point is)";
                    return false;
                }

                break;
            case 'n' or 'y' when flag.Length == 1 && plusSelected:
                error = "the client selected SCRAM-SHA-256-PLUS, but sent no channel binding data";
                return false;
            case 'y' when flag.Length == 1 && plusOffered:
                error = "channel binding negotiation error: the client supports channel binding but thinks the server does not, and this connection does";
                return false;
            case 'n' or 'y' when flag.Length == 1:
                break;
            default:
                error = "unexpected channel-binding flag";
                return false;
        }

        if (message[flagEnd + 1] != ',')
        {
            error = message.AsSpan(flagEnd + 1).StartsWith("a=") ? "authorization identity is not supported" : "expected ',' after the channel-binding flag";
            return false;
        }

        int headerLength = flagEnd + 2;
        var bare = message[headerLength..];
        var reader = new AttributeReader(bare);
        if (bare.StartsWith("m=", StringComparison.Ordinal))
        {
            error = "mandatory extension not supported";
            return false;
        }

        // n= is the user name; PostgreSQL ignores it in favour of the startup packet's user (55.3.1).
        if (!reader.TryRead('n', out _, out error) || !reader.TryRead('r', out var nonce, out error) || !reader.TrySkipExtensions(out error))
        {
            return false;
        }

        if (!IsValidNonce(nonce))
        {
            error = "invalid nonce";
            return false;
        }

        result = new ScramClientFirst(message[..headerLength], bare, nonce);
        return true;
    }

    /// <summary>server-first-message: r=client+server nonce, s=base64 salt, i=iterations.</summary>
    public static string ServerFirst(string nonce, ReadOnlySpan<byte> salt, int iterations) =>
        $"r={nonce},s={Convert.ToBase64String(salt)},i={iterations.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>
    /// Parses a client-final-message: c= must be the base64 of the gs2 header the client sent first, r= the
    /// combined nonce, and p= the 32-byte proof as the last attribute. <paramref name="withoutProof"/> is
    /// client-final-message-without-proof, the last part of AuthMessage.
    /// </summary>
    public static bool TryParseClientFinal(string message, string gs2Header, string combinedNonce,
        [NotNullWhen(true)] out string? withoutProof, [NotNullWhen(true)] out byte[]? proof, [NotNullWhen(false)] out string? error) =>
        TryParseClientFinal(message, gs2Header, [], combinedNonce, out withoutProof, out proof, out error);

    /// <summary>
    /// As above, for a channel-bound exchange: c= must be the base64 of the gs2 header followed by
    /// <paramref name="bindingData"/>, the binding data of this connection (RFC 5802 section 7, cbind-input), so a
    /// client that talked TLS with someone else (a man in the middle's certificate) fails here.
    /// </summary>
    public static bool TryParseClientFinal(string message, string gs2Header, ReadOnlySpan<byte> bindingData, string combinedNonce,
        [NotNullWhen(true)] out string? withoutProof, [NotNullWhen(true)] out byte[]? proof, [NotNullWhen(false)] out string? error)
    {
        withoutProof = null;
        proof = null;
        var reader = new AttributeReader(message);
        if (!reader.TryRead('c', out var binding, out error) || !reader.TryRead('r', out var nonce, out error))
        {
            return false;
        }

        var header = Encoding.ASCII.GetBytes(gs2Header);
        if (!ScramSecret.TryBase64(binding, out var bindingBytes) || bindingBytes.Length != header.Length + bindingData.Length
            || !bindingBytes.AsSpan(0, header.Length).SequenceEqual(header))
        {
            error = "unexpected channel-binding data";
            return false;
        }

        if (!bindingBytes.AsSpan(header.Length).SequenceEqual(bindingData))
        {
            error = "channel binding check failed: the client's TLS server certificate is not this connection's";
            return false;
        }

        if (!string.Equals(nonce, combinedNonce, StringComparison.Ordinal))
        {
            error = "nonce does not match";
            return false;
        }

        while (true)
        {
            int start = reader.Position;
            if (!reader.TryReadAny(out char name, out var value, out error))
            {
                return false;
            }

            if (name != 'p')
            {
                continue;
            }

            if (!reader.AtEnd)
            {
                error = "proof must be the last attribute";
                return false;
            }

            if (!ScramSecret.TryBase64(value, out proof) || proof.Length != ScramSha256.KeyLength)
            {
                proof = null;
                error = "invalid proof";
                return false;
            }

            // start points at the ',' before "p=".
            withoutProof = message[..start];
            return true;
        }
    }

    public static string ServerFinal(ReadOnlySpan<byte> serverSignature) => "v=" + Convert.ToBase64String(serverSignature);

    // ---- client side: FastPool logs in to PostgreSQL --------------------------------------------

    /// <summary>client-first-message-bare with an empty user name: PostgreSQL takes the user from the startup packet (55.3.1).</summary>
    public static string ClientFirstBare(string clientNonce) => "n=,r=" + clientNonce;

    /// <summary>Parses a server-first-message; the server's nonce must extend ours (RFC 5802 section 5.1).</summary>
    public static bool TryParseServerFirst(string message, string clientNonce, [NotNullWhen(true)] out string? nonce,
        [NotNullWhen(true)] out byte[]? salt, out int iterations, [NotNullWhen(false)] out string? error)
    {
        salt = null;
        iterations = 0;
        var reader = new AttributeReader(message);
        if (message.StartsWith("m=", StringComparison.Ordinal))
        {
            nonce = null;
            error = "mandatory extension not supported";
            return false;
        }

        if (!reader.TryRead('r', out nonce, out error) || !reader.TryRead('s', out var saltText, out error) || !reader.TryRead('i', out var iterationText, out error)
            || !reader.TrySkipExtensions(out error))
        {
            nonce = null;
            return false;
        }

        if (nonce.Length <= clientNonce.Length || !nonce.StartsWith(clientNonce, StringComparison.Ordinal) || !IsValidNonce(nonce))
        {
            nonce = null;
            error = "server nonce does not extend the client nonce";
            return false;
        }

        if (!ScramSecret.TryBase64(saltText, out salt) || salt.Length == 0)
        {
            nonce = null;
            salt = null;
            error = "invalid salt";
            return false;
        }

        if (!int.TryParse(iterationText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out iterations) || iterations < 1)
        {
            nonce = null;
            salt = null;
            error = "invalid iteration count";
            return false;
        }

        return true;
    }

    /// <summary>client-final-message-without-proof for the "n,," header: c=biws is base64("n,,").</summary>
    public static string ClientFinalWithoutProof(string combinedNonce) => "c=biws,r=" + combinedNonce;

    /// <summary>client-final-message-without-proof for any gs2 header: c= is base64(gs2 header + channel binding data) (RFC 5802 section 7).</summary>
    public static string ClientFinalWithoutProof(string combinedNonce, string gs2Header, ReadOnlySpan<byte> bindingData)
    {
        var header = Encoding.UTF8.GetBytes(gs2Header);
        var input = new byte[header.Length + bindingData.Length];
        header.CopyTo(input, 0);
        bindingData.CopyTo(input.AsSpan(header.Length));
        return "c=" + Convert.ToBase64String(input) + ",r=" + combinedNonce;
    }

    /// <summary>Parses server-final-message: v=signature, or e=error (RFC 5802 section 7, server-error).</summary>
    public static bool TryParseServerFinal(string message, out byte[]? signature, out string? serverError, [NotNullWhen(false)] out string? error)
    {
        signature = null;
        serverError = null;
        var reader = new AttributeReader(message);
        if (!reader.TryReadAny(out char name, out var value, out error))
        {
            return false;
        }

        if (name == 'e')
        {
            serverError = value;
            return true;
        }

        if (name != 'v' || !ScramSecret.TryBase64(value, out signature) || signature.Length != ScramSha256.KeyLength || !reader.TrySkipExtensions(out error))
        {
            signature = null;
            error ??= "invalid server signature";
            return false;
        }

        return true;
    }

    /// <summary>RFC 5802 section 7: printable = %x21-2B / %x2D-7E (printable ASCII except ',').</summary>
    private static bool IsValidNonce(string nonce)
    {
        if (nonce.Length == 0)
        {
            return false;
        }

        foreach (char c in nonce)
        {
            if (c is < (char)0x21 or > (char)0x7E or ',')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Reads "a=value" attributes separated by ','.</summary>
    private ref struct AttributeReader(string text)
    {
        private readonly string _text = text;
        private int _position;

        public readonly int Position => _position;

        public readonly bool AtEnd => _position >= _text.Length;

        public bool TryRead(char expected, [NotNullWhen(true)] out string? value, [NotNullWhen(false)] out string? error)
        {
            if (!TryReadAny(out char name, out value, out error))
            {
                return false;
            }

            if (name != expected)
            {
                value = null;
                error = $"expected attribute '{expected}'";
                return false;
            }

            return true;
        }

        public bool TryReadAny(out char name, [NotNullWhen(true)] out string? value, [NotNullWhen(false)] out string? error)
        {
            name = '\0';
            value = null;
            int p = _position;
            if (p > 0)
            {
                if (p >= _text.Length || _text[p] != ',')
                {
                    error = "missing attribute";
                    return false;
                }

                p++;
            }

            if (p + 1 >= _text.Length || !char.IsAsciiLetter(_text[p]) || _text[p + 1] != '=')
            {
                error = "malformed attribute";
                return false;
            }

            name = _text[p];
            int end = _text.IndexOf(',', p + 2);
            if (end < 0)
            {
                end = _text.Length;
            }

            value = _text[(p + 2)..end];
            _position = end;
            error = null;
            return true;
        }

        /// <summary>Skips optional extensions up to the end (RFC 5802: unknown optional attributes are ignored).</summary>
        public bool TrySkipExtensions([NotNullWhen(false)] out string? error)
        {
            while (!AtEnd)
            {
                if (!TryReadAny(out _, out _, out error))
                {
                    return false;
                }
            }

            error = null;
            return true;
        }
    }
}
