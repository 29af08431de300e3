using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Connections;

namespace FastPool.Proxy.Admin;

/// <summary>
/// After authentication: a client of the console database gets the admin console if admin_users or stats_users
/// name it; any other client goes on to its session unless an admin disabled its database.
/// </summary>
internal sealed class AdminStage : IConnectionStage
{
    /// <remarks>
    /// Not async for an ordinary client: it hands straight on, so no frame of this stage stays alive for the
    /// length of the session (an idle client's memory is mostly such frames).
    /// </remarks>
    public Task InvokeAsync(ClientContext context, ClientDelegate next)
    {
        if (context.IsConsole)
        {
            return RunConsoleAsync(context);
        }

        if (context.Runtime.Control.WhenUnsuspended is { } resumed)
        {
            return WaitForResumeAsync(context, resumed, next);
        }

        if (context.Runtime.Control.IsDisabled(context.DatabaseName))
        {
            // PostgreSQL's own answer for a database with ALLOW_CONNECTIONS false uses the same code.
            return context.SendErrorAsync(SqlState.ObjectNotInPrerequisiteState,
                $"database \"{context.DatabaseName}\" is not currently accepting connections (disabled by an admin)").AsTask();
        }

        return next(context);
    }

    /// <summary>
    /// SUSPEND: as PgBouncer documents, a new client waits until RESUME before its login completes (the console is
    /// not held: RESUME comes through it). A shutdown's end of waiting tells it 57P01 instead.
    /// </summary>
    private async Task WaitForResumeAsync(ClientContext context, Task resumed, ClientDelegate next)
    {
        try
        {
            await resumed.WaitAsync(context.Runtime.DrainOver).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await context.SendErrorAsync(SqlState.AdminShutdown, ClientContext.ShutdownMessage).ConfigureAwait(false);
            return;
        }

        // Checked again: another SUSPEND may have come, or the database been disabled meanwhile.
        await InvokeAsync(context, next).ConfigureAwait(false);
    }

    private static async Task RunConsoleAsync(ClientContext context)
    {
        var role = RoleOf(context.Config, context.User);
        if (role == ConsoleRole.None)
        {
            await context.SendErrorAsync(SqlState.InsufficientPrivilege,
                $"not allowed: user \"{context.User}\" is in neither admin_users nor stats_users").ConfigureAwait(false);
            return;
        }

        await new AdminConsole(context, role).RunAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// PgBouncer's rule: admin_users may do everything, stats_users may look; with auth_type any (no login check at
    /// all) every user may at least look, so monitoring keeps working in such setups.
    /// </summary>
    public static ConsoleRole RoleOf(ProxyConfig config, string user)
    {
        if (config.AdminUsers.Contains(user, StringComparer.Ordinal))
        {
            return ConsoleRole.Admin;
        }

        if (config.AuthType == AuthType.Any || config.StatsUsers.Contains(user, StringComparer.Ordinal))
        {
            return ConsoleRole.Stats;
        }

        return ConsoleRole.None;
    }
}

internal enum ConsoleRole
{
    None,

    /// <summary>stats_users: SHOW commands only.</summary>
    Stats,

    /// <summary>admin_users: every command.</summary>
    Admin,
}
