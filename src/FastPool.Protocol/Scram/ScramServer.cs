using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace FastPool.Protocol.Scram;

/// <summary>
/// The server side of one SCRAM-SHA-256 exchange, as FastPool runs it with a client (PostgreSQL docs 55.3.1).
/// The exchange takes a secret and whether it may succeed at all: for a user who does not exist (or whose secret
/// cannot be used for SCRAM) the caller passes a made-up secret and <c>canSucceed: false</c>, and the exchange
/// looks the same on the wire as a real one, failing only at the proof, as PostgreSQL's mock authentication does.
/// </summary>
public sealed class ScramServer
{
    private readonly ScramSecret _secret;
    private readonly bool _canSucceed;
    private readonly byte[]? _channelBinding;
    private readonly string _serverNonce;
    private ScramClientFirst? _clientFirst;
    private string? _serverFirst;

    /// <param name="serverNonce">For tests; a fresh random nonce otherwise.</param>
    public ScramServer(ScramSecret secret, bool canSucceed, string? serverNonce = null)
        : this(secret, canSucceed, channelBinding: null, serverNonce)
    {
    }

    /// <param name="channelBinding">
    /// The connection's tls-server-end-point data (RFC 5929 section 4.1) when SCRAM-SHA-256-PLUS is offered on it;
    /// null when it is not (no TLS, or a certificate whose hash cannot be determined).
    /// </param>
    /// <param name="serverNonce">For tests; a fresh random nonce otherwise.</param>
    public ScramServer(ScramSecret secret, bool canSucceed, byte[]? channelBinding, string? serverNonce = null)
    {
        _secret = secret;
        _canSucceed = canSucceed;
        _channelBinding = channelBinding;
        _serverNonce = serverNonce ?? ScramSha256.NewNonce();
    }

    /// <summary>Whether SCRAM-SHA-256-PLUS may be offered: the connection has binding data.</summary>
    public bool CanBindChannel => _channelBinding is not null;

    /// <summary>
    /// Set once the client's proof verified: the keys it proved it holds, for logging in to a server that has the
    /// same secret (SCRAM passthrough). Null before, and after a failed proof.
    /// </summary>
    public ScramKeys? VerifiedKeys { get; private set; }

    /// <summary>Reads client-first-message for SCRAM-SHA-256 and answers with server-first-message. False: the message is malformed.</summary>
    public bool TryServerFirst(ReadOnlySpan<byte> clientFirstBytes, [NotNullWhen(true)] out byte[]? serverFirst, [NotNullWhen(false)] out string? error) =>
        TryServerFirst(clientFirstBytes, plusSelected: false, out serverFirst, out error);

    /// <summary>
    /// Reads client-first-message for the mechanism the client selected (<paramref name="plusSelected"/>: SCRAM-SHA-256-PLUS,
    /// which needs <see cref="CanBindChannel"/>) and answers with server-first-message. False: the message is
    /// malformed or its channel-binding flag does not fit the mechanism.
    /// </summary>
    public bool TryServerFirst(ReadOnlySpan<byte> clientFirstBytes, bool plusSelected, [NotNullWhen(true)] out byte[]? serverFirst, [NotNullWhen(false)] out string? error)
    {
        serverFirst = null;
        if (_clientFirst is not null)
        {
            error = "client-first-message received twice";
            return false;
        }

        if (!ScramMessages.TryDecode(clientFirstBytes, out var text))
        {
            error = "client-first-message is not valid UTF-8";
            return false;
        }

        if (plusSelected && _channelBinding is null)
        {
            error = "SCRAM-SHA-256-PLUS was not offered";
            return false;
        }

        if (!ScramMessages.TryParseClientFirst(text, plusSelected, CanBindChannel, out _clientFirst, out error))
        {
            return false;
        }

        _serverFirst = ScramMessages.ServerFirst(_clientFirst.Nonce + _serverNonce, _secret.Salt, _secret.Iterations);
        serverFirst = Encoding.UTF8.GetBytes(_serverFirst);
        return true;
    }

    /// <summary>
    /// Reads client-final-message. False: the message is malformed (<paramref name="error"/> says why). True with
    /// <paramref name="serverFinal"/> null: well-formed but the proof is wrong. True with a server-final-message:
    /// the client knows the password.
    /// </summary>
    public bool TryServerFinal(ReadOnlySpan<byte> clientFinalBytes, out byte[]? serverFinal, [NotNullWhen(false)] out string? error)
    {
        serverFinal = null;
        if (_clientFirst is null || _serverFirst is null)
        {
            error = "client-final-message before client-first-message";
            return false;
        }

        if (!ScramMessages.TryDecode(clientFinalBytes, out var text))
        {
            error = "client-final-message is not valid UTF-8";
            return false;
        }

        // The channel binding data is checked before the proof, as PostgreSQL does: a mismatch is an attack or a
        // misconfiguration, not a wrong password, and says nothing about the user.
        var binding = _clientFirst.BindsChannel ? _channelBinding : [];
        if (!ScramMessages.TryParseClientFinal(text, _clientFirst.Gs2Header, binding, _clientFirst.Nonce + _serverNonce, out var withoutProof, out var proof, out error))
        {
            return false;
        }

        var authMessage = Encoding.UTF8.GetBytes(_clientFirst.Bare + "," + _serverFirst + "," + withoutProof);

        // The proof is checked even when the exchange cannot succeed, so both paths do the same work.
        var clientKey = new byte[ScramSha256.KeyLength];
        bool valid = ScramSha256.TryRecoverClientKey(proof, _secret.StoredKey, authMessage, clientKey);
        if (valid && _canSucceed)
        {
            serverFinal = Encoding.UTF8.GetBytes(ScramMessages.ServerFinal(ScramSha256.ServerSignature(_secret.ServerKey, authMessage)));
            VerifiedKeys = new ScramKeys(_secret, clientKey);
        }
        else
        {
            CryptographicOperations.ZeroMemory(clientKey);
        }

        return true;
    }
}
