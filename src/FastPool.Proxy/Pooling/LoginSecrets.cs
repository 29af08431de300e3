using System.Collections.Concurrent;
using FastPool.Protocol.Scram;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Connections;

namespace FastPool.Proxy.Pooling;

/// <summary>
/// Secrets FastPool learned at run time that let it log in to servers as a user without a plain password: md5
/// secrets from auth_query (an md5 secret answers the server's md5 challenge as the password would, PostgreSQL docs
/// 55.3 AuthenticationMD5Password) and SCRAM keys recovered from clients' SCRAM logins (SCRAM passthrough).
/// In memory only, never logged.
/// <para>
/// Kept per (database, user), keyed by <see cref="PoolKey.DatabaseKeyOf"/>: one user name may have different
/// secrets on the servers of different database entries (auth_query against each), and what a client proved for
/// one database must never be offered to another database's server, where it would fail at best and, with keys
/// replacing each other, make the logins of both databases fail in turn.
/// </para>
/// </summary>
internal sealed class LoginSecrets
{
    private readonly ConcurrentDictionary<(string Database, string User), string> _md5 = new();
    private readonly ConcurrentDictionary<(string Database, string User), ScramKeys> _scram = new();

    /// <summary>Remembers what an auth_query answer offers for server logins (only md5 secrets: a SCRAM secret alone cannot log in).</summary>
    public void Learn(string database, string user, ClientCredentials credentials)
    {
        if (credentials.Kind == CredentialKind.Md5)
        {
            _md5[(database, user)] = credentials.Secret!;
        }
    }

    /// <summary>The md5 secret to answer an md5 challenge with: the auth_file's, else one auth_query returned for this database.</summary>
    public string? Md5For(ProxyConfig config, string database, string user)
    {
        if (config.AuthFileUsers.TryGetValue(user, out var secret) && ClientCredentials.IsMd5Hash(secret))
        {
            return secret;
        }

        return _md5.TryGetValue((database, user), out secret) ? secret : null;
    }

    /// <summary>Keys from the latest verified client SCRAM login of <paramref name="user"/> to this database; they replace older ones.</summary>
    public void RememberScramKeys(string database, string user, ScramKeys keys) => _scram[(database, user)] = keys;

    public ScramKeys? ScramKeysFor(string database, string user) => _scram.TryGetValue((database, user), out var keys) ? keys : null;

    /// <summary>
    /// Drops keys the server refused (its secret changed). Only these keys: a client may have stored newer ones
    /// meanwhile, which must stay.
    /// </summary>
    public void Forget(string database, string user, ScramKeys keys) => _scram.TryRemove(KeyValuePair.Create((database, user), keys));
}
