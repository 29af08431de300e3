using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Topology;

/// <summary>A node command that cannot be done as asked; the message says why, for the admin console.</summary>
internal sealed class NodeCommandException(string message) : Exception(message);

/// <summary>The operator's commands: ATTACH NODE, DETACH NODE, PROMOTE NODE (switchover), RECOVER NODE.</summary>
internal sealed partial class FailoverCoordinator
{
    private static readonly TimeSpan s_drainPoll = TimeSpan.FromMilliseconds(20);

    /// <summary>DETACH NODE: stop using the node; detaching the primary fails over as losing it would.</summary>
    public async Task DetachAsync(DatabaseTopology topology, Node node)
    {
        List<Func<Task>>? after = null;
        await topology.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (node.Status == NodeStatus.Detached)
            {
                throw new NodeCommandException($"node {node.Id} is already detached");
            }

            bool wasPrimary = topology.Primary == node;
            bool confirmed = topology.PrimaryConfirmed;
            Change(topology, node, node.Role, NodeStatus.Detached, "DETACH NODE (admin console)", notify: !wasPrimary);
            Detach(node, $"node {node.Id} was detached by an administrator");

            // The node still runs: a transaction still open on it must not commit after another node is promoted.
            AbortInUse(node);
            if (wasPrimary)
            {
                topology.SetPrimary(null, confirmed: false);
                if (confirmed)
                {
                    after = FollowPrimary(topology, node, await FailoverAsync(topology, node).ConfigureAwait(false));
                }
            }
        }
        finally
        {
            topology.Gate.Release();
        }

        foreach (var run in after ?? [])
        {
            await run().ConfigureAwait(false);
        }
    }

    /// <summary>ATTACH NODE: use the node again once a probe shows it can be used without a second primary.</summary>
    public async Task AttachAsync(DatabaseTopology topology, Node node)
    {
        var config = runtime.Config;
        var probe = await NodeProbe.CheckAsync(runtime, config, topology.Config, node, HealthLogin(config, topology.Config),
            config.FastPool.Failover.HealthCheckTimeout, CancellationToken.None).ConfigureAwait(false);
        if (probe.Failure != ProbeFailure.None)
        {
            throw new NodeCommandException($"node {node.Id} does not answer: {probe.Check.Error}");
        }

        await topology.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (node.Status == NodeStatus.Up)
            {
                throw new NodeCommandException($"node {node.Id} is already attached");
            }

            var primary = topology.Primary;
            if (!probe.Check.InRecovery)
            {
                if (primary is not null && primary != node)
                {
                    throw new NodeCommandException($"node {node.Id} is a primary while node {primary.Id} is the primary; rebuild it as a standby first (RECOVER NODE {node.Id})");
                }

                Change(topology, node, NodeRole.Primary, NodeStatus.Up, "ATTACH NODE (admin console): the primary");
                topology.SetPrimary(node, confirmed: true);
            }
            else
            {
                Change(topology, node, NodeRole.Standby, NodeStatus.Up, "ATTACH NODE (admin console)");
            }

            ForgetLoginErrors(node);
        }
        finally
        {
            topology.Gate.Release();
        }
    }

    /// <summary>
    /// PROMOTE NODE: a switchover with no lost commit. New transactions wait (as in a failover); those under way
    /// on the primary get failover_wait_timeout / 3 to finish, then their connections are closed; once the standby
    /// has replayed all the WAL the primary wrote, it is promoted. The old primary is left to
    /// follow_primary_command, or fenced until it is rebuilt.
    /// </summary>
    public async Task SwitchoverAsync(DatabaseTopology topology, Node node)
    {
        var config = runtime.Config;
        var settings = config.FastPool.Failover;
        var login = HealthLogin(config, topology.Config);
        Func<Task>? follow = null;
        await topology.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            var old = topology.Primary;
            if (old is null || old.Status != NodeStatus.Up || !topology.PrimaryConfirmed)
            {
                throw new NodeCommandException("there is no confirmed primary to switch over from");
            }

            if (node == old)
            {
                throw new NodeCommandException($"node {node.Id} is already the primary");
            }

            if (node.Status != NodeStatus.Up || node.Role != NodeRole.Standby)
            {
                throw new NodeCommandException($"node {node.Id} is not an attached standby");
            }

            topology.SetPrimary(null, confirmed: false);
            Detach(old, $"switchover from node {old.Id} to node {node.Id}");
            long start = runtime.Time.GetTimestamp();
            var drain = settings.FailoverWaitTimeout / 3;
            while (InUse(old) > 0 && runtime.Time.GetElapsedTime(start) < drain)
            {
                await Task.Delay(s_drainPoll, runtime.Time).ConfigureAwait(false);
            }

            AbortInUse(old);

            // Everything FastPool's clients committed on the old primary is below this position.
            try
            {
                var target = (await NodeProbe.QueryAsync(runtime, config, topology.Config, old, login, "SELECT pg_current_wal_lsn()", settings.HealthCheckTimeout, CancellationToken.None).ConfigureAwait(false))[0];
                await WaitForReplayAsync(topology, node, target, settings.FailoverCommandTimeout).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Nothing was promoted: the old primary takes the writes again.
                topology.SetPrimary(old, confirmed: true);
                ForgetLoginErrors(old);
                throw new NodeCommandException($"switchover abandoned, node {old.Id} stays the primary: {Pooling.ServerConnector.Describe(ex)}");
            }

            if (!await PromoteAsync(topology, old, node, settings).ConfigureAwait(false)
                || (settings.Mode == FailoverMode.Command && await WaitForPrimaryAsync(topology, [node], settings.FailoverCommandTimeout).ConfigureAwait(false) is null))
            {
                throw new NodeCommandException($"node {node.Id} did not leave recovery; writes wait until a check finds a primary");
            }

            Change(topology, node, NodeRole.Primary, NodeStatus.Up, $"PROMOTE NODE: switchover from node {old.Id}", notify: false);
            ForgetLoginErrors(node);
            topology.SetPrimary(node, confirmed: true);
            if (settings.FollowPrimaryCommand is { } command)
            {
                Change(topology, old, NodeRole.Primary, NodeStatus.Down, $"switched over to node {node.Id}; follow_primary_command re-points it");
                follow = () => RunCommandAsync("follow_primary_command", command, Values(topology, old, node, old));
            }
            else
            {
                Fence(topology, old, $"switched over to node {node.Id}; rebuild it as its standby (RECOVER NODE {old.Id})");
            }
        }
        finally
        {
            topology.Gate.Release();
        }

        if (follow is not null)
        {
            await follow().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// RECOVER NODE: rebuilds a detached, down or fenced node as a standby of the current primary with
    /// recovery_command (%d/%h/%p/%D the node, %m/%H/%r/%R the primary), then attaches it once it streams.
    /// </summary>
    public async Task RecoverAsync(DatabaseTopology topology, Node node)
    {
        var config = runtime.Config;
        var settings = config.FastPool.Failover;
        var primary = topology.Primary;
        if (node.Status == NodeStatus.Up)
        {
            throw new NodeCommandException($"node {node.Id} is attached; DETACH NODE {node.Id} first");
        }

        if (primary is null)
        {
            throw new NodeCommandException("there is no primary to rebuild the node from");
        }

        var template = settings.RecoveryCommand ?? BuiltInRecovery(topology, node, settings)
            ?? throw new NodeCommandException($"set recovery_command, or backend_data_directory for node {node.Id} to let FastPool rebuild it with pg_basebackup");

        var exit = await FailoverCommand.RunAsync("recovery_command", FailoverCommand.Format(template, Values(topology, node, primary, primary)),
            settings.RecoveryTimeout, Logger, CancellationToken.None).ConfigureAwait(false);
        if (exit != 0)
        {
            throw new NodeCommandException($"recovery_command failed (exit code {exit?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}); see the log");
        }

        var login = HealthLogin(config, topology.Config);
        long start = runtime.Time.GetTimestamp();
        while (true)
        {
            var probe = await NodeProbe.CheckAsync(runtime, config, topology.Config, node, login, settings.HealthCheckTimeout, CancellationToken.None).ConfigureAwait(false);
            if (probe.Failure == ProbeFailure.None && probe.Check.InRecovery && StreamsFrom(probe.Check, primary))
            {
                break;
            }

            if (runtime.Time.GetElapsedTime(start) > settings.RecoveryTimeout)
            {
                throw new NodeCommandException($"node {node.Id} does not stream from node {primary.Id} after recovery_command: {probe.Check.Error ?? "not streaming"}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), runtime.Time).ConfigureAwait(false);
        }

        await topology.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            Change(topology, node, NodeRole.Standby, NodeStatus.Up, $"RECOVER NODE: rebuilt as a standby of node {primary.Id}");
            ForgetLoginErrors(node);
        }
        finally
        {
            topology.Gate.Release();
        }
    }

    /// <summary>
    /// The rebuild FastPool runs itself for a node on this machine whose data directory it knows: stop what runs
    /// there, take a fresh base backup of the primary with a standby configuration (-R), keep the node's port, start
    /// it. The server tools run as the postgres OS user when FastPool runs as root (they refuse root). The
    /// directory is only replaced when it holds a PostgreSQL data directory (PG_VERSION).
    /// </summary>
    private string? BuiltInRecovery(DatabaseTopology topology, Node node, FailoverSettings settings)
    {
        var host = node.Endpoint.Host;
        bool local = host is "127.0.0.1" or "::1" or "localhost" || host.StartsWith('/');
        if (!local || DataDir(node) is null)
        {
            return null;
        }

        var user = NodeProbe.CheckLogin(runtime.Config, topology.Config, settings.FailoverUser ?? settings.HealthCheckUser).User;
        string asPostgres = Environment.UserName == "root" ? "runuser -u postgres -- " : string.Empty;
        return string.Join('\n',
            "set -e",
            "D='%D'",
            "BIN=\"$(pg_config --bindir)\"",
            "[ -f \"$D/PG_VERSION\" ] || { echo \"$D is not a PostgreSQL data directory\"; exit 1; }",
            $"{asPostgres}\"$BIN/pg_ctl\" -D \"$D\" -m fast -w stop || true",
            "rm -rf \"$D\"",
            $"{asPostgres}\"$BIN/pg_basebackup\" -h %H -p %r -U '{user.Replace("'", string.Empty, StringComparison.Ordinal)}' -D \"$D\" -R -c fast -X stream",
            "echo \"port = %p\" >> \"$D/postgresql.auto.conf\"",
            $"{asPostgres}\"$BIN/pg_ctl\" -D \"$D\" -l \"$D/fastpool-recovery.log\" -w start");
    }

    private async Task WaitForReplayAsync(DatabaseTopology topology, Node node, string? target, TimeSpan timeout)
    {
        var config = runtime.Config;
        if (!NodeMonitor.TryParseLsn(target, out var wanted))
        {
            throw new NodeCommandException($"could not read the primary's WAL position ({target})");
        }

        var login = HealthLogin(config, topology.Config);
        long start = runtime.Time.GetTimestamp();
        while (true)
        {
            var row = await NodeProbe.QueryAsync(runtime, config, topology.Config, node, login, "SELECT pg_last_wal_replay_lsn()", config.FastPool.Failover.HealthCheckTimeout, CancellationToken.None).ConfigureAwait(false);
            if (NodeMonitor.TryParseLsn(row[0], out var replayed) && replayed >= wanted)
            {
                return;
            }

            if (runtime.Time.GetElapsedTime(start) > timeout)
            {
                throw new TimeoutException($"node {node.Id} had not replayed up to {target} after {timeout.TotalSeconds:0.###} s");
            }

            await Task.Delay(s_drainPoll, runtime.Time).ConfigureAwait(false);
        }
    }

    /// <summary>Server connections to the node that clients hold right now.</summary>
    private int InUse(Node node) => runtime.Clients.Values.Count(c => c.Session?.CurrentServer?.Node == node);

    /// <summary>Closes the server connections clients hold on the node; those clients get a connection error.</summary>
    private void AbortInUse(Node node)
    {
        foreach (var client in runtime.Clients.Values)
        {
            if (client.Session?.CurrentServer is { } server && server.Node == node)
            {
                server.Broken = true;
                server.Connection.Abort();
            }
        }
    }
}
