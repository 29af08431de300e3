namespace FastPool.Protocol.Scram;

/// <summary>
/// What SCRAM passthrough needs to log in as a user without the password: the ClientKey a client proved it holds
/// (recovered from its proof, checked against StoredKey) and the ServerKey of the same secret, with the salt and
/// iteration count they belong to. A server accepts them only if it stores the same secret (same salt and
/// iterations), as when FastPool's secret was read from pg_authid (RFC 5802 section 3; PostgreSQL docs 55.3.1).
/// Password-equivalent for that server: kept in memory only, never logged (ToString is redacted).
/// </summary>
public sealed class ScramKeys
{
    public ScramKeys(ScramSecret secret, byte[] clientKey)
    {
        Secret = secret;
        ClientKey = clientKey;
    }

    /// <summary>The secret the client's proof was verified against (salt, iterations, StoredKey, ServerKey).</summary>
    public ScramSecret Secret { get; }

    public byte[] ClientKey { get; }

    public byte[] ServerKey => Secret.ServerKey;

    public override string ToString() => "SCRAM keys (redacted)";
}
