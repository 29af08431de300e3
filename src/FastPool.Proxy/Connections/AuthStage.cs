using System.Security.Cryptography;
using System.Text;
using FastPool.Protocol;
using FastPool.Proxy.Admin;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Connections;

/// <summary>
/// Finds the database entry and authenticates the client against auth_type (55.2.1, 55.3 "SASL Authentication").
/// The foundation has trust, any, plain and md5; the remaining methods answer with a clear error.
/// </summary>
internal sealed class AuthStage : IConnectionStage
{
    public async Task InvokeAsync(ClientContext context, ClientDelegate next)
    {
        var startup = context.Startup!;
        context.User = startup.GetParameter("user")!;
        context.DatabaseName = startup.GetParameter("database") is { Length: > 0 } db ? db : context.User;
        var config = context.Config;

        // The admin console has no [databases] entry: it authenticates like any database, then AdminStage takes over.
        context.IsConsole = AdminConsole.IsConsoleDatabase(context.DatabaseName);
        var entry = context.IsConsole ? null : config.FindDatabase(context.DatabaseName);
        if (entry is null && !context.IsConsole)
        {
            await context.SendErrorAsync(SqlState.InvalidCatalogName, $"no such database: {context.DatabaseName}").ConfigureAwait(false);
            return;
        }

        context.Database = entry;
        bool ok = config.AuthType switch
        {
            AuthType.Trust or AuthType.Any => true,
            AuthType.Plain => await PasswordAsync(context, md5: false).ConfigureAwait(false),
            AuthType.Md5 => await PasswordAsync(context, md5: true).ConfigureAwait(false),
            _ => await UnsupportedAsync(context, config.AuthType).ConfigureAwait(false),
        };
        if (ok)
        {
            await next(context).ConfigureAwait(false);
        }
    }

    private static async Task<bool> UnsupportedAsync(ClientContext context, AuthType type)
    {
        await context.SendErrorAsync(SqlState.FeatureNotSupported, $"auth_type {type} is not supported by this FastPool version (use trust, any, plain or md5)").ConfigureAwait(false);
        return false;
    }

    /// <summary>AuthenticationCleartextPassword or AuthenticationMD5Password, checked against the auth_file secret.</summary>
    private static async Task<bool> PasswordAsync(ClientContext context, bool md5)
    {
        context.Config.AuthFileUsers.TryGetValue(context.User, out var secret);
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
        await context.Connection.SendAsync(builder.Written).ConfigureAwait(false);

        string? answer;
        try
        {
            using var cts = new CancellationTokenSource(context.Config.ClientLoginTimeout > TimeSpan.Zero ? context.Config.ClientLoginTimeout : Timeout.InfiniteTimeSpan);
            var (code, body) = await MessageIo.ReadMessageAsync(context.Connection.Input, cts.Token).ConfigureAwait(false);
            answer = code == (byte)FrontendCode.Password && body.Length > 0 ? Encoding.UTF8.GetString(body, 0, body.Length - 1) : null;
        }
        catch (Exception)
        {
            context.CloseReason = "client did not answer the password request";
            return false;
        }

        if (secret is not null && answer is not null && Matches(context.User, secret, answer, md5 ? salt : null))
        {
            return true;
        }

        // The same message whatever failed, as PostgreSQL does, so a client cannot probe for user names.
        await context.SendErrorAsync(SqlState.InvalidPassword, $"password authentication failed for user \"{context.User}\"").ConfigureAwait(false);
        return false;
    }

    private static bool Matches(string user, string secret, string answer, byte[]? salt)
    {
        if (secret.StartsWith("SCRAM-SHA-256$", StringComparison.Ordinal))
        {
            return false;
        }

        string expected;
        if (salt is null)
        {
            if (secret.StartsWith("md5", StringComparison.Ordinal) && secret.Length == 35)
            {
                // Cleartext answer against a stored md5 secret: compare md5(password + user).
                expected = "md5" + Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(answer + user)));
                return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(secret));
            }

            expected = secret;
        }
        else
        {
            expected = Messages.Md5Password(user, secret, salt);
        }

        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(answer));
    }
}
