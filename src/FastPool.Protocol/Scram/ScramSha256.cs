using System.Security.Cryptography;
using System.Text;

namespace FastPool.Protocol.Scram;

/// <summary>
/// The SCRAM-SHA-256 key derivations (RFC 5802 section 3, RFC 7677), as PostgreSQL uses them
/// (PostgreSQL docs 55.3.1 "SCRAM-SHA-256 Authentication"):
/// SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, i); ClientKey = HMAC(SaltedPassword, "Client Key");
/// StoredKey = H(ClientKey); ServerKey = HMAC(SaltedPassword, "Server Key");
/// ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage); ServerSignature = HMAC(ServerKey, AuthMessage).
/// </summary>
public static class ScramSha256
{
    public const string Mechanism = "SCRAM-SHA-256";

    /// <summary>SCRAM-SHA-256 bound to the TLS channel (PostgreSQL docs 55.3.1; RFC 5802 section 4).</summary>
    public const string PlusMechanism = "SCRAM-SHA-256-PLUS";

    /// <summary>SHA-256 output, and so the length of every key, proof and signature.</summary>
    public const int KeyLength = 32;

    /// <summary>PostgreSQL's default scram_iterations, used for secrets FastPool derives itself.</summary>
    public const int DefaultIterations = 4096;

    /// <summary>PostgreSQL's salt length (SCRAM_DEFAULT_SALT_LEN).</summary>
    public const int DefaultSaltLength = 16;

    private static readonly byte[] s_clientKeyLabel = "Client Key"u8.ToArray();
    private static readonly byte[] s_serverKeyLabel = "Server Key"u8.ToArray();

    public static byte[] SaltedPassword(string password, ReadOnlySpan<byte> salt, int iterations)
    {
        var bytes = Encoding.UTF8.GetBytes(SaslPrep.Normalize(password));
        try
        {
            return Rfc2898DeriveBytes.Pbkdf2(bytes, salt, iterations, HashAlgorithmName.SHA256, KeyLength);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    public static byte[] ClientKey(ReadOnlySpan<byte> saltedPassword) => HMACSHA256.HashData(saltedPassword, s_clientKeyLabel);

    public static byte[] ServerKey(ReadOnlySpan<byte> saltedPassword) => HMACSHA256.HashData(saltedPassword, s_serverKeyLabel);

    public static byte[] StoredKey(ReadOnlySpan<byte> clientKey) => SHA256.HashData(clientKey);

    /// <summary>The secret PostgreSQL would store for <paramref name="password"/> with this salt and iteration count.</summary>
    public static ScramSecret DeriveSecret(string password, byte[] salt, int iterations)
    {
        var salted = SaltedPassword(password, salt, iterations);
        var clientKey = ClientKey(salted);
        var secret = new ScramSecret(iterations, salt, StoredKey(clientKey), ServerKey(salted));
        CryptographicOperations.ZeroMemory(salted);
        CryptographicOperations.ZeroMemory(clientKey);
        return secret;
    }

    /// <summary>ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage): what a client sends in client-final-message.</summary>
    public static byte[] ClientProof(ReadOnlySpan<byte> clientKey, ReadOnlySpan<byte> storedKey, ReadOnlySpan<byte> authMessage)
    {
        var proof = HMACSHA256.HashData(storedKey, authMessage);
        for (int i = 0; i < proof.Length; i++)
        {
            proof[i] ^= clientKey[i];
        }

        return proof;
    }

    public static byte[] ServerSignature(ReadOnlySpan<byte> serverKey, ReadOnlySpan<byte> authMessage) => HMACSHA256.HashData(serverKey, authMessage);

    /// <summary>
    /// Checks a client proof against a stored key: recovers ClientKey = proof XOR ClientSignature and compares
    /// H(ClientKey) with StoredKey in constant time (RFC 5802 section 3, "the server verifies...").
    /// </summary>
    public static bool VerifyClientProof(ReadOnlySpan<byte> proof, ReadOnlySpan<byte> storedKey, ReadOnlySpan<byte> authMessage)
    {
        Span<byte> clientKey = stackalloc byte[KeyLength];
        bool valid = TryRecoverClientKey(proof, storedKey, authMessage, clientKey);
        CryptographicOperations.ZeroMemory(clientKey);
        return valid;
    }

    /// <summary>
    /// The verification of <see cref="VerifyClientProof"/>, keeping the ClientKey it recovers in
    /// <paramref name="clientKey"/> (KeyLength bytes). A verified ClientKey lets FastPool answer the server's own
    /// SCRAM challenge for the same secret without knowing the password (RFC 5802 section 3: the proof is
    /// ClientKey XOR HMAC(StoredKey, AuthMessage), and StoredKey = H(ClientKey)).
    /// </summary>
    public static bool TryRecoverClientKey(ReadOnlySpan<byte> proof, ReadOnlySpan<byte> storedKey, ReadOnlySpan<byte> authMessage, Span<byte> clientKey)
    {
        if (proof.Length != KeyLength || storedKey.Length != KeyLength || clientKey.Length != KeyLength)
        {
            return false;
        }

        HMACSHA256.HashData(storedKey, authMessage, clientKey);
        for (int i = 0; i < KeyLength; i++)
        {
            clientKey[i] ^= proof[i];
        }

        Span<byte> computed = stackalloc byte[KeyLength];
        SHA256.HashData(clientKey, computed);
        return CryptographicOperations.FixedTimeEquals(computed, storedKey);
    }

    /// <summary>A printable nonce (base64 of random bytes: never ',' and always printable, as RFC 5802 section 5.1 requires).</summary>
    public static string NewNonce() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
}
