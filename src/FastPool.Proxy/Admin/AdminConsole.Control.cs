using System.Globalization;
using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Admin;

/// <summary>The commands that change something: admin_users only.</summary>
internal sealed partial class AdminConsole
{
    // How often PAUSE looks whether the servers it waits for are back; a console command, not a hot path.
    private static readonly TimeSpan s_pausePoll = TimeSpan.FromMilliseconds(50);

    // How often SUSPEND looks whether the sends under way have finished.
    private static readonly TimeSpan s_suspendSettle = TimeSpan.FromMilliseconds(20);

    private static readonly HashSet<string> s_controlVerbs = new(StringComparer.Ordinal)
    {
        "PAUSE", "RESUME", "DISABLE", "ENABLE", "RECONNECT", "KILL", "KILL_CLIENT", "RELOAD", "SHUTDOWN", "SET", "SUSPEND", "WAIT_CLOSE",
        "ATTACH", "DETACH", "PROMOTE", "RECOVER", "PURGE",
    };

    private static bool IsControlVerb(string verb) => s_controlVerbs.Contains(verb);

    private async ValueTask ControlAsync(AdminCommand command)
    {
        var control = _runtime.Control;
        switch (command.Verb)
        {
            case "PAUSE":
                await PauseAsync(OptionalDatabase(command)).ConfigureAwait(false);
                break;
            case "RESUME":
                Resume(OptionalDatabase(command));
                break;
            case "SUSPEND":
                await SuspendAsync(command).ConfigureAwait(false);
                break;
            case "WAIT_CLOSE":
                await WaitCloseAsync(OptionalDatabase(command)).ConfigureAwait(false);
                break;
            case "DISABLE":
                control.Disable(RequiredDatabase(command));
                break;
            case "ENABLE":
                control.Enable(RequiredDatabase(command));
                break;
            case "RECONNECT":
                foreach (var pool in PoolsOf(OptionalDatabase(command)))
                {
                    pool.Reconnect();
                }

                break;
            case "KILL":
                Kill(RequiredDatabase(command));
                break;
            case "KILL_CLIENT":
                KillClient(command);
                break;
            case "RELOAD":
                Reload();
                break;
            case "SHUTDOWN":
                var mode = ShutdownModeOf(command);
                _afterReply = () => _runtime.ShutdownRequested?.Invoke(mode);
                break;
            case "SET":
                Set(command.Args[0], command.Args[1]);
                break;
            case "ATTACH":
            case "DETACH":
            case "PROMOTE":
            case "RECOVER":
                await NodeCommandAsync(command).ConfigureAwait(false);
                break;
            case "PURGE":
                await PurgeCacheAsync(command).ConfigureAwait(false);
                return;
            default:
                throw new AdminException(SqlState.FeatureNotSupported, $"{command.Verb} is not supported by FastPool");
        }

        // Like PostgreSQL, a command that returns no rows answers with its own name as the tag.
        _result.Complete(command.Verb);
    }

    /// <summary>
    /// PURGE CACHE [table]: drops every cached result, or those that read the table (in any database). In a shared
    /// Redis store entries do not list their tables where a scan can see them: both forms remove all of its entries.
    /// </summary>
    private async ValueTask PurgeCacheAsync(AdminCommand command)
    {
        if (command.Args.Count is < 1 or > 2 || !command.Args[0].Equals("CACHE", StringComparison.OrdinalIgnoreCase))
        {
            throw new AdminException(SqlState.SyntaxError, "syntax: PURGE CACHE [table]");
        }

        if (_runtime.Cache is not { } cache)
        {
            throw new AdminException(SqlState.ObjectNotInPrerequisiteState, "the result cache is off (memory_cache_enabled)");
        }

        string? table = command.Args.Count == 2 ? Routing.Classification.CacheClassifier.NormalizeName(command.Args[1]) : null;
        long removed = cache.Purge(table);
        if (_runtime.SharedCache is { } shared)
        {
            removed += await shared.PurgeAsync().ConfigureAwait(false);
        }

        _result.Complete("PURGE " + removed.ToString(CultureInfo.InvariantCulture));
    }

    private async Task PauseAsync(string? db)
    {
        if (_runtime.Control.IsSuspended)
        {
            throw new AdminException(SqlState.ObjectNotInPrerequisiteState, "already suspended/paused");
        }

        if (!_runtime.Control.Pause(db))
        {
            throw new AdminException(SqlState.ObjectNotInPrerequisiteState, db is null ? "already suspended/paused" : $"database \"{db}\" is already paused");
        }

        await WaitForServersReleasedAsync(db).ConfigureAwait(false);
    }

    /// <summary>SHUTDOWN: at once; WAIT_FOR_CLIENTS and WAIT_FOR_SERVERS as SIGTERM and SIGINT (PgBouncer 1.23+).</summary>
    private static ShutdownMode ShutdownModeOf(AdminCommand command) => command.Args.Count switch
    {
        0 => ShutdownMode.Immediate,
        1 when command.Args[0].Equals("WAIT_FOR_CLIENTS", StringComparison.OrdinalIgnoreCase) => ShutdownMode.Safe,
        1 when command.Args[0].Equals("WAIT_FOR_SERVERS", StringComparison.OrdinalIgnoreCase) => ShutdownMode.WaitForServers,
        _ => throw new AdminException(SqlState.SyntaxError, "syntax: SHUTDOWN [WAIT_FOR_CLIENTS|WAIT_FOR_SERVERS]"),
    };

    private void Resume(string? db)
    {
        if (_runtime.ShuttingDown)
        {
            // A shutdown waiting for servers relies on the pause; undoing it would let new transactions start.
            throw new AdminException(SqlState.ObjectNotInPrerequisiteState, "pooler is shutting down");
        }

        if (!_runtime.Control.Resume(db))
        {
            throw new AdminException(SqlState.ObjectNotInPrerequisiteState, db is null ? "nothing is paused" : $"database \"{db}\" is not paused");
        }
    }

    /// <summary>
    /// SUSPEND, as PgBouncer documents it: forwarding stops in every session, those holding a server included, and
    /// the command returns once the sends under way have finished (the socket buffers are flushed). Connections
    /// that cannot finish within suspend_timeout are dropped, as PgBouncer drops them. No request gets a server
    /// until RESUME; idle servers stay open. The console itself keeps working, so RESUME can be given.
    /// </summary>
    private async Task SuspendAsync(AdminCommand command)
    {
        if (command.Args.Count != 0)
        {
            throw new AdminException(SqlState.SyntaxError, "syntax: SUSPEND");
        }

        switch (_runtime.Control.Suspend())
        {
            case SuspendOutcome.AlreadyPaused:
                throw new AdminException(SqlState.ObjectNotInPrerequisiteState, "already suspended/paused");
            case SuspendOutcome.DatabasesPaused:
                throw new AdminException(SqlState.ObjectNotInPrerequisiteState, "cannot suspend with paused databases", "RESUME them first.");
        }

        // A pump may have read the gate as open just before it closed: give its mark time to become visible.
        await Task.Delay(s_suspendSettle, _runtime.Time).ConfigureAwait(false);
        long start = _runtime.Time.GetTimestamp();
        while (true)
        {
            var sending = _runtime.Clients.Values.Where(c => c.Session?.IsForwarding == true).ToList();
            if (sending.Count == 0 || _context.Connection.IsClosed)
            {
                return;
            }

            if (_runtime.Time.GetElapsedTime(start) >= _runtime.Config.SuspendTimeout)
            {
                foreach (var client in sending)
                {
                    client.Kill("suspend_timeout: its buffers could not be flushed");
                }

                return;
            }

            await Task.Delay(s_suspendSettle, _runtime.Time).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// WAIT_CLOSE [db]: returns once no server of the database(s) still waits to be closed after a RECONNECT or a
    /// reload that changed its server (SHOW SERVERS' close_needed), i.e. once the change is fully in effect.
    /// </summary>
    private async Task WaitCloseAsync(string? db)
    {
        while (CloseNeeded(db) && !_context.Connection.IsClosed)
        {
            await Task.Delay(s_pausePoll, _runtime.Time).ConfigureAwait(false);
        }
    }

    private bool CloseNeeded(string? db)
    {
        foreach (var pool in PoolsOf(db))
        {
            if ((pool.Retired && pool.TotalCount > 0) || pool.IdleSnapshot().Any(s => s.Generation != pool.Generation))
            {
                return true;
            }
        }

        // Servers in use are seen through the clients holding them.
        foreach (var client in _runtime.Clients.Values)
        {
            if (client.Session?.CurrentServer is { } server && (db is null || server.Pool.Key.ClientDatabase == db)
                && (server.Generation != server.Pool.Generation || server.Pool.Retired))
            {
                return true;
            }
        }

        return false;
    }

    private void Reload()
    {
        var outcome = _runtime.Reload();
        if (!outcome.Applied)
        {
            throw new AdminException(SqlState.ConfigFileError, outcome.Message);
        }
    }

    /// <summary>
    /// PAUSE returns once no server of the paused database(s) is in use any more (in session mode: once their
    /// clients have left), then closes the idle ones, as PgBouncer does. New requests wait in the pause gate.
    /// </summary>
    private async Task WaitForServersReleasedAsync(string? db)
    {
        while (true)
        {
            var pools = PoolsOf(db).ToList();
            if (pools.All(p => p.TotalCount == p.IdleCount))
            {
                foreach (var pool in pools)
                {
                    pool.CloseIdle();
                }

                return;
            }

            // Stop waiting when the admin left or someone resumed meanwhile; the pause itself stands until RESUME.
            if (_context.Connection.IsClosed || (db is null ? !_runtime.Control.AllPaused : !_runtime.Control.IsPaused(db)))
            {
                return;
            }

            await Task.Delay(s_pausePoll, _runtime.Time).ConfigureAwait(false);
        }
    }

    /// <summary>KILL: pause the database, drop its clients and close its servers; new clients wait for RESUME.</summary>
    private void Kill(string db)
    {
        _runtime.Control.Pause(db);
        foreach (var client in _runtime.Clients.Values)
        {
            if (!client.IsConsole && client.LoggedIn && client.DatabaseName == db)
            {
                client.Kill("database killed by admin");
            }
        }

        foreach (var pool in PoolsOf(db))
        {
            pool.Reconnect();
        }
    }

    private void KillClient(AdminCommand command)
    {
        if (command.Args.Count != 1)
        {
            throw new AdminException(SqlState.SyntaxError, "syntax: KILL_CLIENT id", "The id is the id column of SHOW CLIENTS.");
        }

        var text = command.Args[0];
        if (text.StartsWith("C-", StringComparison.OrdinalIgnoreCase))
        {
            text = text[2..];
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || !_runtime.Clients.TryGetValue(id, out var client))
        {
            throw new AdminException(SqlState.UndefinedObject, $"no client with id {command.Args[0]}", "SHOW CLIENTS lists the clients and their ids.");
        }

        client.Kill("killed by admin (KILL_CLIENT)");
    }

    /// <summary>
    /// SET key = value for the settings that can change while running. The value goes through the config loader,
    /// so it is checked exactly as in the file; the change lasts until the next reload or restart.
    /// </summary>
    private void Set(string name, string value)
    {
        var key = ConfigKeys.Find(name) ?? throw new AdminException(SqlState.UndefinedObject, $"unknown setting \"{name}\"", "SHOW CONFIG lists the settings.");
        if (!key.Changeable)
        {
            throw new AdminException(SqlState.CantChangeRuntimeParam, $"setting \"{key.Name}\" cannot be changed while FastPool runs",
                "SHOW CONFIG marks the settings SET can change; change this one in the file and restart.");
        }

        if (value.AsSpan().IndexOfAny('\n', '\r') >= 0)
        {
            throw new AdminException(SqlState.InvalidParameterValue, $"invalid value for {key.Name}: line breaks are not allowed");
        }

        var parsed = ConfigLoader.LoadFromText($"[pgbouncer]\n{key.Name} = {value}\n", "SET", Environment.CurrentDirectory);
        if (parsed.Config is null)
        {
            throw new AdminException(SqlState.InvalidParameterValue, parsed.Errors[0].Message);
        }

        _runtime.Apply(current => key.Copy!(current, parsed.Config));
        Log.SettingChanged(_runtime.Logger, key.Name, value);
    }

    private string? OptionalDatabase(AdminCommand command)
    {
        if (command.Args.Count > 1)
        {
            throw new AdminException(SqlState.SyntaxError, $"syntax: {command.Verb} [database]");
        }

        return command.Args.Count == 0 ? null : CheckDatabase(command.Args[0]);
    }

    private string RequiredDatabase(AdminCommand command)
    {
        if (command.Args.Count != 1)
        {
            throw new AdminException(SqlState.SyntaxError, $"syntax: {command.Verb} database");
        }

        return CheckDatabase(command.Args[0]);
    }

    private string CheckDatabase(string name)
    {
        if (IsConsoleDatabase(name))
        {
            throw new AdminException(SqlState.ObjectNotInPrerequisiteState, "the admin console database cannot be paused, disabled or killed");
        }

        if (_runtime.Config.FindDatabase(name) is null && PoolsOf(name).FirstOrDefault() is null)
        {
            throw new AdminException(SqlState.InvalidCatalogName, $"no such database: {name}");
        }

        return name;
    }

    private IEnumerable<ServerPool> PoolsOf(string? db) =>
        _runtime.Pools.AllPools.Where(p => db is null || p.Key.ClientDatabase == db);
}
