using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace FastPool.Protocol.Scram;

/// <summary>
/// The client side of one SCRAM-SHA-256 exchange, as FastPool runs it when PostgreSQL asks it to log in with SASL
/// (PostgreSQL docs 55.3.1): without channel binding (gs2 header "n,," or "y,,") or, as SCRAM-SHA-256-PLUS over
/// TLS, bound to the server's certificate ("p=tls-server-end-point,,", RFC 5929 section 4). Call in order: <see cref="ClientFirst"/>,
/// <see cref="TryClientFinal"/>, <see cref="TryVerifyServerFinal"/>; only a verified server signature proves the
/// server knew the secret, so a login must not count as done before <see cref="ServerVerified"/>.
/// </summary>
public sealed class ScramClient
{
    private readonly string? _password;
    private readonly ScramKeys? _keys;
    private readonly string _clientNonce;
    private readonly string _gs2Header;
    private readonly byte[] _bindingData;
    private byte[]? _expectedServerSignature;

    /// <param name="password">The plain password.</param>
    /// <param name="clientNonce">For tests; a fresh random nonce otherwise.</param>
    public ScramClient(string password, string? clientNonce = null)
        : this(password, ScramMessages.Gs2HeaderNoBinding, [], clientNonce)
    {
    }

    /// <param name="password">The plain password.</param>
    /// <param name="gs2Header">One of the ScramMessages.Gs2Header* constants.</param>
    /// <param name="bindingData">The channel binding data for "p=" headers (tls-server-end-point: the certificate hash); empty otherwise.</param>
    /// <param name="clientNonce">For tests; a fresh random nonce otherwise.</param>
    public ScramClient(string password, string gs2Header, byte[] bindingData, string? clientNonce = null)
    {
        _password = password;
        _gs2Header = gs2Header;
        _bindingData = bindingData;
        _clientNonce = clientNonce ?? ScramSha256.NewNonce();
    }

    /// <summary>
    /// SCRAM passthrough: logs in with keys recovered from a client's own exchange instead of a password. The
    /// server's salt and iteration count must be those of <paramref name="keys"/>' secret, or its StoredKey differs.
    /// </summary>
    public ScramClient(ScramKeys keys, string gs2Header, byte[] bindingData, string? clientNonce = null)
        : this(string.Empty, gs2Header, bindingData, clientNonce)
    {
        _password = null;
        _keys = keys;
    }

    public bool ServerVerified { get; private set; }

    private string ClientFirstBare => ScramMessages.ClientFirstBare(_clientNonce);

    /// <summary>client-first-message, the SASLInitialResponse data.</summary>
    public byte[] ClientFirst() => Encoding.UTF8.GetBytes(_gs2Header + ClientFirstBare);

    /// <summary>Answers server-first-message with client-final-message (carrying the proof).</summary>
    public bool TryClientFinal(ReadOnlySpan<byte> serverFirstBytes, [NotNullWhen(true)] out byte[]? clientFinal, [NotNullWhen(false)] out string? error)
    {
        clientFinal = null;
        if (_expectedServerSignature is not null)
        {
            error = "server-first-message received twice";
            return false;
        }

        if (!ScramMessages.TryDecode(serverFirstBytes, out var serverFirst))
        {
            error = "server-first-message is not valid UTF-8";
            return false;
        }

        if (!ScramMessages.TryParseServerFirst(serverFirst, _clientNonce, out var nonce, out var salt, out int iterations, out error))
        {
            return false;
        }

        var withoutProof = ScramMessages.ClientFinalWithoutProof(nonce, _gs2Header, _bindingData);
        var authMessage = Encoding.UTF8.GetBytes(ClientFirstBare + "," + serverFirst + "," + withoutProof);
        byte[] proof;
        if (_keys is not null)
        {
            // Keys belong to one salt and iteration count; the server's proof check would fail with any other,
            // so say why here instead of letting it look like a wrong password.
            if (iterations != _keys.Secret.Iterations || !CryptographicOperations.FixedTimeEquals(salt, _keys.Secret.Salt))
            {
                error = "the server's SCRAM secret for this user has another salt or iteration count than FastPool's "
                    + "(SCRAM passthrough needs the secret exactly as the server stores it, e.g. copied from pg_authid)";
                return false;
            }

            proof = ScramSha256.ClientProof(_keys.ClientKey, _keys.Secret.StoredKey, authMessage);
            _expectedServerSignature = ScramSha256.ServerSignature(_keys.ServerKey, authMessage);
        }
        else
        {
            var salted = ScramSha256.SaltedPassword(_password!, salt, iterations);
            var clientKey = ScramSha256.ClientKey(salted);
            proof = ScramSha256.ClientProof(clientKey, ScramSha256.StoredKey(clientKey), authMessage);
            _expectedServerSignature = ScramSha256.ServerSignature(ScramSha256.ServerKey(salted), authMessage);
            CryptographicOperations.ZeroMemory(salted);
            CryptographicOperations.ZeroMemory(clientKey);
        }

        clientFinal = Encoding.UTF8.GetBytes(withoutProof + ",p=" + Convert.ToBase64String(proof));
        return true;
    }

    /// <summary>Checks server-final-message: the server's signature, or the error it reports (e=).</summary>
    public bool TryVerifyServerFinal(ReadOnlySpan<byte> serverFinalBytes, [NotNullWhen(false)] out string? error)
    {
        if (_expectedServerSignature is null)
        {
            error = "server-final-message before server-first-message";
            return false;
        }

        if (!ScramMessages.TryDecode(serverFinalBytes, out var serverFinal)
            || !ScramMessages.TryParseServerFinal(serverFinal, out var signature, out var serverError, out error))
        {
            error = "malformed server-final-message";
            return false;
        }

        if (serverError is not null)
        {
            error = "server reported SCRAM error: " + serverError;
            return false;
        }

        if (!CryptographicOperations.FixedTimeEquals(signature, _expectedServerSignature))
        {
            error = "server signature does not match: the server does not know this user's password";
            return false;
        }

        ServerVerified = true;
        error = null;
        return true;
    }
}
