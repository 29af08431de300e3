using System.Buffers;
using FastPool.Protocol;
using FastPool.Protocol.Scram;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Connections;

/// <summary>SCRAM-SHA-256 towards the client (PostgreSQL docs 55.3 "SASL Authentication", 55.3.1).</summary>
internal sealed partial class AuthStage
{
    /// <summary>
    /// Runs the exchange against the user's SCRAM secret, or one derived from a plain password. Users without
    /// either (unknown, or an md5 secret, which SCRAM cannot use) get a fake exchange that fails only at the proof.
    /// Over TLS, when the certificate allows channel binding, SCRAM-SHA-256-PLUS is offered first, as PostgreSQL
    /// lists it (55.3.1): the client's proof then also covers the hash of the certificate it saw (tls-server-end-point,
    /// RFC 5929), so a man in the middle with another certificate cannot relay the login.
    /// </summary>
    private static async Task<bool> ScramAsync(ClientContext context, ClientCredentials credentials, CancellationToken ct)
    {
        var salts = context.Runtime.ScramSalts;
        var binding = context.ChannelBinding;

        // Deriving a secret (PBKDF2) takes milliseconds: on the thread pool, not on an I/O loop thread.
        await Task.Yield();
        var exchange = credentials.Kind switch
        {
            CredentialKind.Scram => new ScramServer(credentials.Scram!, canSucceed: true, binding),
            CredentialKind.Plain => new ScramServer(salts.FromPlain(context.User, credentials.Secret!), canSucceed: true, binding),
            _ => new ScramServer(salts.Fake(context.User), canSucceed: false, binding),
        };

        context.Builder.Reset();
        if (exchange.CanBindChannel)
        {
            context.Builder.AuthenticationSasl(ScramSha256.PlusMechanism, ScramSha256.Mechanism);
        }
        else
        {
            context.Builder.AuthenticationSasl(ScramSha256.Mechanism);
        }

        var body = await ExchangeAsync(context, ct).ConfigureAwait(false);
        if (body is null)
        {
            return false;
        }

        if (!FrontendMessageReader.TryReadSaslInitialResponse(new ReadOnlySequence<byte>(body), out var mechanism, out var initial))
        {
            return await MalformedAsync(context, "invalid SASLInitialResponse layout").ConfigureAwait(false);
        }

        var selected = mechanism.ToArray().AsSpan();
        bool plus = exchange.CanBindChannel && selected.SequenceEqual("SCRAM-SHA-256-PLUS"u8);
        if (!plus && !selected.SequenceEqual("SCRAM-SHA-256"u8))
        {
            await context.SendErrorAsync(SqlState.ProtocolViolation, "client selected an invalid SASL authentication mechanism").ConfigureAwait(false);
            return false;
        }

        if (initial.IsNull)
        {
            return await MalformedAsync(context, "missing client-first-message").ConfigureAwait(false);
        }

        if (!exchange.TryServerFirst(initial.Data.ToArray(), plus, out var serverFirst, out var error))
        {
            return await MalformedAsync(context, error).ConfigureAwait(false);
        }

        context.Builder.Reset();
        context.Builder.AuthenticationSaslContinue(serverFirst);
        body = await ExchangeAsync(context, ct).ConfigureAwait(false);
        if (body is null)
        {
            return false;
        }

        if (!exchange.TryServerFinal(body, out var serverFinal, out error))
        {
            return await MalformedAsync(context, error).ConfigureAwait(false);
        }

        if (serverFinal is null)
        {
            return await FailPasswordAsync(context).ConfigureAwait(false);
        }

        // The client proved it holds the ClientKey of the stored secret: keep it for server logins (passthrough).
        // Only for a stored SCRAM secret: one derived from a plain password has FastPool's salt, not the server's.
        // Per database: the same user name may have another secret on another entry's server (auth_query). The
        // admin console has no server to log in to.
        if (credentials.Kind == CredentialKind.Scram && exchange.VerifiedKeys is { } keys && context.Database is { } entry)
        {
            context.Runtime.Pools.Secrets.RememberScramKeys(PoolKey.DatabaseKeyOf(entry, context.DatabaseName), context.User, keys);
        }

        // SASLFinal now; AuthenticationOk follows when the session starts (55.3.1 ends with it).
        context.Builder.Reset();
        context.Builder.AuthenticationSaslFinal(serverFinal);
        try
        {
            await context.Connection.SendAsync(context.Builder.Written, ct).ConfigureAwait(false);
            return true;
        }
        catch (Exception)
        {
            context.CloseReason = "client connection lost during authentication";
            return false;
        }
    }

    /// <summary>PostgreSQL's answer to a SCRAM message it cannot parse; the detail names the rule broken, never the content.</summary>
    private static async Task<bool> MalformedAsync(ClientContext context, string reason)
    {
        await context.SendErrorAsync(SqlState.ProtocolViolation, "malformed SCRAM message", detail: reason).ConfigureAwait(false);
        return false;
    }
}
