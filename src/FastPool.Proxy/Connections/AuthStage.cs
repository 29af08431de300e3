using System.Buffers;
using System.Net;
using System.Net.Sockets;
using FastPool.Protocol;
using FastPool.Proxy.Admin;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Configuration.Hba;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Connections;

/// <summary>
/// Finds the database entry and authenticates the client (PostgreSQL docs 55.2.1 "Start-up", 55.3 "SASL
/// Authentication"). auth_type picks the method; under hba the first matching auth_hba_file rule does.
/// Failures look the same for a wrong password and an unknown user (28P01, same text, same exchange), so a
/// client cannot probe for user names. Nothing secret (passwords, secrets, proofs, nonces) reaches a log line:
/// the close reason logged is the error text sent, and no error text quotes what the client sent.
/// </summary>
internal sealed partial class AuthStage : IConnectionStage
{
    /// <summary>Longest authentication message accepted; PostgreSQL's bound (PG_MAX_AUTH_TOKEN_LENGTH) is the same.</summary>
    private const int MaxAuthMessage = 65535;

    private enum Method
    {
        Trust,
        Any,
        Reject,
        Password,
        Md5,
        ScramSha256,
        Peer,
        Cert,
    }

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

        if (await AuthenticateAsync(context, config).ConfigureAwait(false))
        {
            await next(context).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Runs the chosen method within client_login_timeout. Its own frame, so the timer is gone once the client is
    /// in: the stage's frame lives as long as the session, and an idle client should hold no timer.
    /// </summary>
    private async Task<bool> AuthenticateAsync(ClientContext context, ProxyConfig config)
    {
        // Linked to the end of a safe shutdown's wait: a client still authenticating then is told 57P01.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.Runtime.DrainOver);
        if (config.ClientLoginTimeout > TimeSpan.Zero)
        {
            timeout.CancelAfter(config.ClientLoginTimeout);
        }

        var address = ClientAddress(context);
        var method = await ChooseMethodAsync(context, address).ConfigureAwait(false);
        return method switch
        {
            null => false,
            Method.Trust => await TrustAsync(context, timeout.Token).ConfigureAwait(false),
            Method.Any => await AnyAsync(context).ConfigureAwait(false),
            Method.Reject => await RejectAsync(context, address).ConfigureAwait(false),
            Method.Peer => await PeerAsync(context).ConfigureAwait(false),
            Method.Cert => await CertAsync(context).ConfigureAwait(false),
            Method.Password or Method.Md5 or Method.ScramSha256 => await PasswordMethodAsync(context, method.Value, timeout.Token).ConfigureAwait(false),
            _ => false,
        };
    }

    /// <summary>auth_query's answer for the client's user; null once the client was told why there is none.</summary>
    private static async Task<ClientCredentials?> LookUpWithAuthQueryAsync(ClientContext context, AuthQueryTarget target, CancellationToken ct)
    {
        try
        {
            return await context.Runtime.AuthQuery.LookupAsync(context.Config, target, context.User, ct).ConfigureAwait(false);
        }
        catch (AuthQueryException)
        {
            // The same text whoever the user is: the reason (logged) is about the server, not about them.
            await context.SendErrorAsync(SqlState.InvalidAuthorizationSpecification, "authentication failed: could not look up the user with auth_query").ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException)
        {
            await context.SendLoginStoppedAsync("client_login_timeout (authentication not completed in time)").ConfigureAwait(false);
            return null;
        }
    }

    /// <summary>
    /// The password methods: the secret comes from the auth_file or, for a user not in it, from auth_query when the
    /// database entry has an auth_user (for the admin console: when auth_dbname names the entry to ask). An
    /// auth_query answer is dropped from the cache when the login fails, and an md5 secret it gave is kept for
    /// server logins once the client proved it knows the password.
    /// </summary>
    private static async Task<bool> PasswordMethodAsync(ClientContext context, Method method, CancellationToken ct)
    {
        var config = context.Config;
        var credentials = ClientCredentials.Lookup(config, context.User);
        var entry = context.Database;
        var target = AuthQueryLookup.TargetFor(config, entry, context.DatabaseName);
        bool authQuery = target is not null;
        bool fromQuery = false;
        if (credentials.Kind == CredentialKind.None && target is not null)
        {
            if (await LookUpWithAuthQueryAsync(context, target, ct).ConfigureAwait(false) is not { } found)
            {
                return false;
            }

            credentials = found;
            fromQuery = true;
        }

        bool ok = method switch
        {
            Method.Password => await PasswordAsync(context, credentials, md5: false, ct, authQuery).ConfigureAwait(false),
            Method.Md5 => await Md5OrScramAsync(context, credentials, authQuery, ct).ConfigureAwait(false),
            _ => await ScramAsync(context, credentials, ct).ConfigureAwait(false),
        };
        if (fromQuery)
        {
            if (!ok)
            {
                context.Runtime.AuthQuery.Forget(target!, context.User);
            }
            else if (entry is not null)
            {
                context.Runtime.Pools.Secrets.Learn(PoolKey.DatabaseKeyOf(entry, context.DatabaseName), context.User, credentials);
            }
        }

        return ok;
    }

    private static async ValueTask<Method?> ChooseMethodAsync(ClientContext context, IPAddress? address)
    {
        switch (context.Config.AuthType)
        {
            case AuthType.Trust:
                return Method.Trust;
            case AuthType.Any:
                return Method.Any;
            case AuthType.Plain:
                return Method.Password;
            case AuthType.Md5:
                return Method.Md5;
            case AuthType.ScramSha256:
                return Method.ScramSha256;
            case AuthType.Cert:
                return Method.Cert;
        }

        // auth_type = hba: the first rule matching connection type, database, user and address decides (21.1).
        var rule = context.Config.HbaRules?.Find(address, context.IsTls, context.DatabaseName, context.User);
        if (rule is null)
        {
            await context.SendErrorAsync(SqlState.InvalidAuthorizationSpecification,
                $"no pg_hba.conf entry for host \"{HostText(address)}\", user \"{context.User}\", database \"{context.DatabaseName}\", {EncryptionText(context)}").ConfigureAwait(false);
            return null;
        }

        return rule.Method switch
        {
            HbaMethod.Trust => Method.Trust,
            HbaMethod.Reject => Method.Reject,
            HbaMethod.Password => Method.Password,
            HbaMethod.Md5 => Method.Md5,
            HbaMethod.ScramSha256 => Method.ScramSha256,
            HbaMethod.Cert => Method.Cert,
            _ => Method.Peer,
        };
    }

    private static async Task<bool> RejectAsync(ClientContext context, IPAddress? address)
    {
        await context.SendErrorAsync(SqlState.InvalidAuthorizationSpecification,
            $"pg_hba.conf rejects connection for host \"{HostText(address)}\", user \"{context.User}\", database \"{context.DatabaseName}\", {EncryptionText(context)}").ConfigureAwait(false);
        return false;
    }

    /// <summary>The last part of PostgreSQL's hba messages (src/backend/libpq/auth.c): how the client is connected.</summary>
    private static string EncryptionText(ClientContext context) => context.IsTls ? "SSL encryption" : "no encryption";

    /// <summary>The one failure every password method reports, whatever went wrong (PostgreSQL's text and code).</summary>
    private static async Task<bool> FailPasswordAsync(ClientContext context)
    {
        await context.SendErrorAsync(SqlState.InvalidPassword, $"password authentication failed for user \"{context.User}\"").ConfigureAwait(false);
        return false;
    }

    /// <summary>The client's IP address; null for a unix-socket client ("local" in hba terms).</summary>
    private static IPAddress? ClientAddress(ClientContext context)
    {
        try
        {
            return context.Connection.Socket.RemoteEndPoint is IPEndPoint ip
                ? (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address)
                : null;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return null;
        }
    }

    private static string HostText(IPAddress? address) => address?.ToString() ?? "[local]";

    /// <summary>
    /// Sends an authentication request, then reads the client's 'p' answer (PasswordMessage, SASLInitialResponse
    /// or SASLResponse, 55.7). Null when the client left, timed out or sent something else; the error, if the
    /// client is still there to read it, has been sent.
    /// </summary>
    private static async Task<byte[]?> ExchangeAsync(ClientContext context, CancellationToken ct)
    {
        try
        {
            await context.Connection.SendAsync(context.Builder.Written, ct).ConfigureAwait(false);
            var input = context.Connection.Input;
            while (true)
            {
                var result = await input.ReadAsync(ct).ConfigureAwait(false);
                var buffer = result.Buffer;
                if (MessageHeader.TryPeek(buffer, out var header))
                {
                    if (header.Code != (byte)FrontendCode.Password)
                    {
                        input.AdvanceTo(buffer.Start);
                        if (header.Code == (byte)FrontendCode.Terminate)
                        {
                            context.CloseReason = "client closed the connection during authentication";
                            return null;
                        }

                        await context.SendErrorAsync(SqlState.ProtocolViolation, $"expected an authentication response, got message type '{(char)header.Code}'").ConfigureAwait(false);
                        return null;
                    }

                    if (header.Length < 4 || header.Length > MaxAuthMessage + 4)
                    {
                        input.AdvanceTo(buffer.Start);
                        await context.SendErrorAsync(SqlState.ProtocolViolation, "invalid authentication message length").ConfigureAwait(false);
                        return null;
                    }

                    if (buffer.Length >= header.TotalLength)
                    {
                        var body = buffer.Slice(MessageHeader.Size, header.BodyLength).ToArray();
                        input.AdvanceTo(buffer.GetPosition(header.TotalLength));
                        return body;
                    }
                }

                input.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    // libpq does this when it has no password yet: psql then prompts and connects again.
                    context.CloseReason = "client closed the connection during authentication";
                    return null;
                }
            }
        }
        catch (OperationCanceledException)
        {
            await context.SendLoginStoppedAsync("client_login_timeout (authentication not completed in time)").ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            context.CloseReason = "client connection lost during authentication";
            return null;
        }
    }
}
