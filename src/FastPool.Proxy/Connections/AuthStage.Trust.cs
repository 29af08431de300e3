using FastPool.Protocol;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Connections;

/// <summary>
/// trust and any, with PgBouncer's meaning (its auth_type docs): trust asks for no password but lets in only users it
/// knows; any lets in every user name and logs in to the server as the database entry's user= instead.
/// </summary>
internal sealed partial class AuthStage
{
    /// <summary>What PgBouncer 1.18 answers a user trust does not know (observed: FATAL, SQLSTATE 08P01).</summary>
    private const string TrustFailed = "\"trust\" authentication failed";

    /// <summary>
    /// trust (auth_type, or an hba rule's method): no password, but the user must be known, from the auth_file or a
    /// [users] entry, or else found by auth_query when auth_user applies (a row with a NULL secret counts: the user
    /// exists). PgBouncer 1.18's answers, observed: 08P01 "no such user" when auth_query found no row, 08P01
    /// "\"trust\" authentication failed" otherwise. trust offers nothing to guess, so telling known from unknown
    /// users apart gives nothing away that logging in would not.
    /// </summary>
    private static async Task<bool> TrustAsync(ClientContext context, CancellationToken ct)
    {
        var config = context.Config;
        if (ClientCredentials.IsListed(config, context.User))
        {
            return true;
        }

        var target = AuthQueryLookup.TargetFor(config, context.Database, context.DatabaseName);
        if (target is null)
        {
            await context.SendErrorAsync(SqlState.ProtocolViolation, TrustFailed).ConfigureAwait(false);
            return false;
        }

        if (await LookUpWithAuthQueryAsync(context, target, ct).ConfigureAwait(false) is not { } credentials)
        {
            return false;
        }

        if (ReferenceEquals(credentials, ClientCredentials.None))
        {
            // As after a failed password login: the role may have just been created, so the next login asks again.
            context.Runtime.AuthQuery.Forget(target, context.User);
            await context.SendErrorAsync(SqlState.ProtocolViolation, "no such user").ConfigureAwait(false);
            return false;
        }

        // As under the password methods: an md5 secret auth_query gave answers the server's md5 challenge. Under
        // trust the client proves nothing, which is what trust means; PgBouncer logs in with it the same way.
        if (context.Database is { } entry)
        {
            context.Runtime.Pools.Secrets.Learn(PoolKey.DatabaseKeyOf(entry, context.DatabaseName), context.User, credentials);
        }

        return true;
    }

    /// <summary>
    /// any: whatever user name the client sends is let in and then ignored: the session is the entry's user= (a
    /// pool per entry, not per made-up name). An entry without user= cannot serve such a client; PgBouncer 1.18
    /// answers 08P01 "bouncer config error" (observed) and so does FastPool, saying why in the log. The admin
    /// console has no entry: anyone may use its SHOW commands (AdminStage).
    /// </summary>
    private static async Task<bool> AnyAsync(ClientContext context)
    {
        if (context.IsConsole)
        {
            return true;
        }

        if (context.Database?.User is not { } forced)
        {
            Log.AnyNeedsUser(context.Runtime.Logger, context.Database?.Name ?? context.DatabaseName);
            await context.SendErrorAsync(SqlState.ProtocolViolation, "bouncer config error").ConfigureAwait(false);
            return false;
        }

        context.User = forced;
        return true;
    }
}
