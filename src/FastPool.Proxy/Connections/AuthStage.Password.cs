using System.Security.Cryptography;
using System.Text;
using FastPool.Protocol;
using FastPool.Protocol.Scram;

namespace FastPool.Proxy.Connections;

/// <summary>Cleartext and md5 password authentication (PostgreSQL docs 55.3, 21.5 "Password Authentication").</summary>
internal sealed partial class AuthStage
{
    /// <summary>
    /// md5, as PostgreSQL applies it: a user whose secret is a SCRAM secret is asked for SCRAM instead, since an
    /// md5 answer cannot be checked against it (21.5). Unknown users get the exchange most users get.
    /// </summary>
    private static Task<bool> Md5OrScramAsync(ClientContext context, ClientCredentials credentials, bool authQuery, CancellationToken ct)
    {
        bool scram = credentials.Kind == CredentialKind.Scram || (credentials.Kind == CredentialKind.None && MostlyScram(context, authQuery));
        return scram ? ScramAsync(context, credentials, ct) : PasswordAsync(context, credentials, md5: true, ct);
    }

    /// <summary>With auth_query, the users FastPool knows are the server's: their secrets decide what most users get.</summary>
    private static bool MostlyScram(ClientContext context, bool authQuery) =>
        authQuery ? context.Runtime.AuthQuery.MostlyScram : ClientCredentials.MostlyScram(context.Config);

    /// <summary>AuthenticationCleartextPassword or AuthenticationMD5Password, checked against the auth_file secret.</summary>
    private static async Task<bool> PasswordAsync(ClientContext context, ClientCredentials credentials, bool md5, CancellationToken ct, bool authQuery = false)
    {
        var salt = RandomNumberGenerator.GetBytes(4);
        var builder = context.Builder;
        builder.Reset();
        builder.StartMessage((byte)BackendCode.Authentication);
        if (md5)
        {
            builder.WriteInt32((int)AuthenticationCode.Md5Password).WriteBytes(salt);
        }
        else
        {
            builder.WriteInt32((int)AuthenticationCode.CleartextPassword);
        }

        builder.EndMessage();
        var body = await ExchangeAsync(context, ct).ConfigureAwait(false);
        if (body is null)
        {
            return false;
        }

        // PasswordMessage: one String (55.7); anything else is malformed, not merely a wrong password.
        if (body.Length == 0 || body[^1] != 0 || Array.IndexOf(body, (byte)0) != body.Length - 1)
        {
            await context.SendErrorAsync(SqlState.ProtocolViolation, "invalid password packet layout").ConfigureAwait(false);
            return false;
        }

        var answer = Encoding.UTF8.GetString(body, 0, body.Length - 1);
        // Checking a cleartext password against a SCRAM secret costs a PBKDF2 run; an unknown user costs the same
        // when most users have SCRAM secrets, so the time to the answer does not tell who exists.
        bool unknownLikeScram = !md5 && credentials.Kind == CredentialKind.None && MostlyScram(context, authQuery);
        if (!md5 && (credentials.Kind == CredentialKind.Scram || unknownLikeScram))
        {
            // PBKDF2 takes milliseconds: run it on the thread pool, not on the I/O loop thread this
            // continuation may be on, where it would stall every other connection of that loop.
            await Task.Yield();
        }

        if (unknownLikeScram)
        {
            _ = context.Runtime.ScramSalts.Fake(context.User);
        }

        bool ok = md5 ? MatchesMd5(context.User, credentials, answer, salt) : MatchesCleartext(context.User, credentials, answer);
        return ok || await FailPasswordAsync(context).ConfigureAwait(false);
    }

    private static bool MatchesMd5(string user, ClientCredentials credentials, string answer, byte[] salt)
    {
        if (credentials.Kind is not (CredentialKind.Plain or CredentialKind.Md5))
        {
            return false;
        }

        // Messages.Md5Password hashes a plain password first and uses an md5 secret as it is.
        return FixedTimeEquals(Messages.Md5Password(user, credentials.Secret!, salt), answer);
    }

    private static bool MatchesCleartext(string user, ClientCredentials credentials, string answer)
    {
        switch (credentials.Kind)
        {
            case CredentialKind.Plain:
                return FixedTimeEquals(credentials.Secret!, answer);
            case CredentialKind.Md5:
                // A stored md5 secret is "md5" + md5(password + user).
                return FixedTimeEquals(credentials.Secret!, "md5" + Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(answer + user))));
            case CredentialKind.Scram:
                // A cleartext password can be checked against a SCRAM secret by deriving the keys with its salt.
                var secret = credentials.Scram!;
                var derived = ScramSha256.DeriveSecret(answer, secret.Salt, secret.Iterations);
                return CryptographicOperations.FixedTimeEquals(derived.StoredKey, secret.StoredKey)
                    & CryptographicOperations.FixedTimeEquals(derived.ServerKey, secret.ServerKey);
            default:
                return false;
        }
    }

    private static bool FixedTimeEquals(string expected, string actual) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(actual));
}
