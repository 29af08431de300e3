using System.Collections.Concurrent;
using FastPool.Protocol.Scram;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Connections;

namespace FastPool.Proxy.Pooling;

/// <summary>
/// Secrets FastPool learned at run time that let it log in to servers as a user without a plain password: md5
/// secrets from auth_query (an md5 secret answers the server's md5 challenge as the password would, PostgreSQL docs
/// 55.3 AuthenticationMD5Password) and SCRAM keys recovered from clients' SCRAM logins (SCRAM passthrough). Kept per
/// user name, in memory only, like PgBouncer keeps them on its user; never logged.
/// </summary>
internal sealed class LoginSecrets
{
    private readonly ConcurrentDictionary<string, string> _md5 = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ScramKeys> _scram = new(StringComparer.Ordinal);

    /// <summary>Remembers what an auth_query answer offers for server logins (only md5 secrets: a SCRAM secret alone cannot log in).</summary>
    public void Learn(string user, ClientCredentials credentials)
    {
        if (credentials.Kind == CredentialKind.Md5)
        {
            _md5[user] = credentials.Secret!;
        }
    }

    /// <summary>The md5 secret to answer an md5 challenge with: the auth_file's, else one auth_query returned.</summary>
    public string? Md5For(ProxyConfig config, string user)
    {
        if (config.AuthFileUsers.TryGetValue(user, out var secret) && ClientCredentials.IsMd5Hash(secret))
        {
            return secret;
        }

        return _md5.TryGetValue(user, out secret) ? secret : null;
    }

    /// <summary>Keys from the latest verified client SCRAM login of <paramref name="user"/>; they replace older ones.</summary>
    public void RememberScramKeys(string user, ScramKeys keys) => _scram[user] = keys;

    public ScramKeys? ScramKeysFor(string user) => _scram.TryGetValue(user, out var keys) ? keys : null;

    /// <summary>
    /// Drops keys the server refused (its secret changed). Only these keys: a client may have stored newer ones
    /// meanwhile, which must stay.
    /// </summary>
    public void Forget(string user, ScramKeys keys) => _scram.TryRemove(KeyValuePair.Create(user, keys));
}
