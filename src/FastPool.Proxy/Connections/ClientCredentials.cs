using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using FastPool.Protocol.Scram;
using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Connections;

internal enum CredentialKind
{
    /// <summary>The user is not in the auth_file, or has an empty secret (PostgreSQL never accepts an empty password).</summary>
    None,
    Plain,
    Md5,
    Scram,
}

/// <summary>A client user's auth_file secret, classified. Never logged: ToString says only the kind.</summary>
internal sealed class ClientCredentials
{
    private static readonly ConditionalWeakTable<IReadOnlyDictionary<string, string>, StrongBox<bool>> s_mostlyScram = new();

    private ClientCredentials(CredentialKind kind, string? secret, ScramSecret? scram)
    {
        Kind = kind;
        Secret = secret;
        Scram = scram;
    }

    public CredentialKind Kind { get; }

    /// <summary>The plain password or the "md5..." hash.</summary>
    public string? Secret { get; }

    public ScramSecret? Scram { get; }

    public static ClientCredentials None { get; } = new(CredentialKind.None, null, null);

    /// <summary>
    /// A user auth_query found whose secret is NULL or empty: no password method lets them in, but trust does, since
    /// the user exists (PgBouncer lets them in under trust too).
    /// </summary>
    public static ClientCredentials NoSecret { get; } = new(CredentialKind.None, null, null);

    /// <summary>
    /// Whether the configuration itself names the user: an auth_file line (any secret, even an empty one) or a
    /// [users] entry. auth_type = trust lets in only users it knows, as PgBouncer does.
    /// </summary>
    public static bool IsListed(ProxyConfig config, string user) =>
        config.AuthFileUsers.ContainsKey(user) || config.Users.ContainsKey(user);

    public static ClientCredentials Lookup(ProxyConfig config, string user) =>
        FromSecret(config.AuthFileUsers.TryGetValue(user, out var secret) ? secret : null);

    /// <summary>Classifies a secret as the auth_file or an auth_query result holds it (plain, "md5...", "SCRAM-SHA-256$...").</summary>
    public static ClientCredentials FromSecret(string? secret)
    {
        if (string.IsNullOrEmpty(secret))
        {
            return None;
        }

        if (ScramSecret.LooksLikeSecret(secret))
        {
            // The loader rejects malformed SCRAM secrets; a config built in code may still hold one.
            return ScramSecret.TryParse(secret, out var scram)
                ? new ClientCredentials(CredentialKind.Scram, null, scram)
                : None;
        }

        return IsMd5Hash(secret)
            ? new ClientCredentials(CredentialKind.Md5, secret, null)
            : new ClientCredentials(CredentialKind.Plain, secret, null);
    }

    /// <summary>
    /// Whether most auth_file secrets are SCRAM secrets. Under md5 a user with a SCRAM secret is asked for SCRAM,
    /// so an unknown user gets whichever exchange most real users get, as PostgreSQL picks its mock exchange by
    /// password_encryption (PostgreSQL docs 21.5 "Password Authentication").
    /// </summary>
    public static bool MostlyScram(ProxyConfig config) =>
        s_mostlyScram.GetValue(config.AuthFileUsers, static users =>
        {
            int scram = users.Values.Count(ScramSecret.LooksLikeSecret);
            return new StrongBox<bool>(scram * 2 > users.Count);
        }).Value;

    public override string ToString() => $"{Kind} credentials";

    /// <summary>"md5" + 32 lower-case hex digits, as PostgreSQL stores it; a password that merely starts with "md5" is plain.</summary>
    internal static bool IsMd5Hash(string secret) =>
        secret.Length == 35 && secret.StartsWith("md5", StringComparison.Ordinal) && !secret.AsSpan(3).ContainsAnyExcept("0123456789abcdef");
}

/// <summary>
/// Salts and made-up secrets for SCRAM exchanges where the auth_file has no SCRAM secret: a plain password gets
/// a secret derived on the fly, an unknown user a fake one. Both use the same salt per user name, derived from a
/// per-process key, so repeated attempts see a stable salt either way and the exchange does not tell the two
/// apart (PostgreSQL does the same with its mock salt, src/backend/libpq/auth-scram.c "mock authentication").
/// </summary>
internal sealed class ScramSalts(byte[] key)
{
    public static ScramSalts CreateRandom() => new(RandomNumberGenerator.GetBytes(32));

    public byte[] SaltFor(string user) => Derive("salt", user)[..ScramSha256.DefaultSaltLength];

    public ScramSecret FromPlain(string user, string password) => ScramSha256.DeriveSecret(password, SaltFor(user), ScramSha256.DefaultIterations);

    /// <summary>
    /// A secret nobody can answer. Derived with PBKDF2 like a plain-password secret, so the work per attempt is
    /// the same as for a real user with a plain password.
    /// </summary>
    public ScramSecret Fake(string user) =>
        ScramSha256.DeriveSecret(Convert.ToBase64String(Derive("password", user)), SaltFor(user), ScramSha256.DefaultIterations);

    private byte[] Derive(string purpose, string user) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(purpose + "\0" + user));
}
