using System.Globalization;
using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;
using Microsoft.Extensions.Logging;

namespace FastPool.Proxy.Topology;

/// <summary>
/// Decides node roles and statuses from what the checks see, and fails over when a confirmed primary is lost.
/// Every decision of one database entry runs under its topology's gate, so a check never races a promotion
/// and two nodes are never the primary at once. The rules, in short:
/// a node seen out of recovery becomes the primary only when there is none (or only an assumed one);
/// otherwise it is fenced (needs recovery). A node seen in recovery is a standby; a standby that was down comes
/// back only with auto_failback and when it streams from the current primary.
/// </summary>
internal sealed partial class FailoverCoordinator(ProxyRuntime runtime)
{
    private static readonly TimeSpan s_promotePoll = TimeSpan.FromMilliseconds(50);

    // Serialises node losses across entries: the entries that list a lost server are all updated in one decision.
    private readonly SemaphoreSlim _downGate = new(1, 1);

    private ILogger Logger => runtime.Logger;

    /// <summary>A check reached the node and learnt its role; false when the check was stale and nothing was applied.</summary>
    public async Task<bool> OnReachableAsync(DatabaseTopology topology, Node node, NodeCheck check, CheckStamp stamp)
    {
        await topology.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            // Stale: the world changed while the check was under way; a later check will see the new one.
            if (stamp != topology.Stamp(node))
            {
                return false;
            }

            if (!check.InRecovery && (topology.Primary is null || !topology.PrimaryConfirmed) && node.Status is NodeStatus.Up or NodeStatus.Down)
            {
                await ChoosePrimaryAsync(topology, node, check).ConfigureAwait(false);
            }
            else
            {
                ApplyReachable(topology, node, check);
            }

            return true;
        }
        finally
        {
            topology.Gate.Release();
        }
    }

    /// <summary>
    /// No node is the primary (startup, or a lost primary nothing replaced) and this one says it is. Every other
    /// usable node is asked too, and the primary on the newest timeline wins: after a failover and a restart of
    /// both the old primary and FastPool, the promoted node is chosen, never the older timeline. Any other
    /// claimant is fenced.
    /// </summary>
    private async Task ChoosePrimaryAsync(DatabaseTopology topology, Node node, NodeCheck check)
    {
        var config = runtime.Config;
        var others = topology.Nodes.Where(n => n != node && n.Status is NodeStatus.Up or NodeStatus.Down).ToList();
        var login = HealthLogin(config, topology.Config);
        var probes = await Task.WhenAll(others.Select(n => NodeProbe.CheckAsync(runtime, config, topology.Config, n, login, config.FastPool.Failover.HealthCheckTimeout, CancellationToken.None)))
            .ConfigureAwait(false);
        var claimants = new List<(Node Node, uint Timeline)> { (node, check.Timeline) };
        for (int i = 0; i < others.Count; i++)
        {
            if (probes[i].Failure == ProbeFailure.None && !probes[i].Check.InRecovery)
            {
                claimants.Add((others[i], probes[i].Check.Timeline));
            }
        }

        var winner = claimants.OrderByDescending(c => c.Timeline).ThenBy(c => c.Node.Id).First().Node;
        Change(topology, winner, NodeRole.Primary, NodeStatus.Up, claimants.Count == 1 ? "check: primary" : "check: primary on the newest timeline", notify: false);
        ForgetLoginErrors(winner);
        topology.SetPrimary(winner, confirmed: true);
        foreach (var (loser, timeline) in claimants)
        {
            if (loser != winner)
            {
                Fence(topology, loser, $"claims to be a primary (timeline {timeline}) while node {winner.Id} is the primary on a newer timeline; rebuild it (RECOVER NODE {loser.Id})");
            }
        }
    }

    private void ApplyReachable(DatabaseTopology topology, Node node, NodeCheck check)
    {
        var primary = topology.Primary;
        var failover = runtime.Config.FastPool.Failover;
        switch (node.Status)
        {
            case NodeStatus.Up or NodeStatus.Down when !check.InRecovery:
                if (primary == node)
                {
                    Change(topology, node, NodeRole.Primary, NodeStatus.Up, "check: primary");
                }
                else if (primary is not null)
                {
                    Fence(topology, node, node.Status == NodeStatus.Up
                        ? $"claims to be a primary while node {primary.Id} is the primary"
                        : $"came back as a primary while node {primary.Id} is the primary; rebuild it as a standby (RECOVER NODE {node.Id})");
                }

                break;
            case NodeStatus.Up:
                Change(topology, node, NodeRole.Standby, NodeStatus.Up, "check: standby");
                if (primary == node)
                {
                    // Demoted behind our back: writes wait for the node a check finds out of recovery.
                    topology.SetPrimary(null, confirmed: false);
                }

                break;
            case NodeStatus.Down:
            case NodeStatus.NeedsRecovery when check.InRecovery:
                if (primary is not null && StreamsFrom(check, primary) && failover.AutoFailback)
                {
                    Change(topology, node, NodeRole.Standby, NodeStatus.Up, $"auto_failback: streaming from node {primary.Id}");
                    ForgetLoginErrors(node);
                }
                else
                {
                    node.SetReason(
                        !failover.AutoFailback ? "reachable again as a standby; auto_failback is off (ATTACH NODE to use it)"
                        : primary is null ? "reachable again as a standby; no primary to stream from yet"
                        : $"reachable again as a standby, but not streaming from node {primary.Id}",
                        runtime.Time.GetUtcNow());
                }

                break;
        }
    }

    /// <summary>
    /// The node answers but refuses the checks' login or query (no health_check_user set up): its role cannot be
    /// known. So that such a configuration keeps working as it did under PgBouncer, the first node is then
    /// assumed to take writes, unconfirmed, which also means it is never failed over from.
    /// </summary>
    public async Task OnUncheckableAsync(DatabaseTopology topology, Node node, string error)
    {
        await topology.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (topology.Primary is null && node == topology.Nodes[0] && node.Status == NodeStatus.Up)
            {
                Log.FailoverProblem(Logger, topology.Config.Name, node.Id,
                    $"the checks cannot log in ({error}); node 0 is assumed to be the primary and will not be failed over from: set health_check_user / health_check_password");
                node.SetReason("assumed primary: the checks cannot log in: " + error, runtime.Time.GetUtcNow());
                topology.SetPrimary(node, confirmed: false);
            }
        }
        finally
        {
            topology.Gate.Release();
        }
    }

    /// <summary>
    /// The health checks confirmed the node down (retries exhausted, or the connection refused). A server is one
    /// server however many entries list it (node identity is host:port): every entry that lists it takes it out
    /// in this one decision, and a primary lost by several entries is replaced once, by one promotion that all of
    /// them follow. Two entries failing over on their own could promote two different standbys.
    /// </summary>
    public async Task OnDownAsync(DatabaseTopology topology, Node node, string reason)
    {
        var followUps = new Dictionary<NodeEndpoint, Func<Task>>();
        await _downGate.WaitAsync().ConfigureAwait(false);
        try
        {
            // The entries that saw the node as their confirmed primary first: the first of them chooses and promotes.
            var members = NodesAt(topology, node)
                .OrderByDescending(m => m.Topology.Primary == m.Node && m.Topology.PrimaryConfirmed)
                .ToList();
            var loss = new Loss();
            foreach (var (entry, member) in members)
            {
                await entry.Gate.WaitAsync().ConfigureAwait(false);
                try
                {
                    await MarkDownAsync(entry, member, reason, loss, followUps).ConfigureAwait(false);
                }
                finally
                {
                    entry.Gate.Release();
                }
            }
        }
        finally
        {
            _downGate.Release();
        }

        // Outside the gates: a slow follow_primary_command must not hold up checks and clients.
        foreach (var run in followUps.Values)
        {
            await run().ConfigureAwait(false);
        }
    }

    /// <summary>Every (entry, node) that is the server at <paramref name="node"/>'s host:port, <paramref name="topology"/>'s first.</summary>
    internal List<(DatabaseTopology Topology, Node Node)> NodesAt(DatabaseTopology topology, Node node)
    {
        var members = new List<(DatabaseTopology, Node)> { (topology, node) };
        var config = runtime.Config;
        foreach (var database in config.Databases.Append(config.FallbackDatabase))
        {
            if (database is null || database.Nodes.Count < 2 || !database.Nodes.Contains(node.Endpoint))
            {
                continue;
            }

            var other = runtime.GetTopology(database);
            if (other == topology)
            {
                continue;
            }

            foreach (var candidate in other.Nodes)
            {
                if (candidate.Endpoint == node.Endpoint)
                {
                    members.Add((other, candidate));
                }
            }
        }

        return members;
    }

    /// <summary>What one node loss decided so far, across the entries that list the node.</summary>
    private sealed class Loss
    {
        /// <summary>A failover was tried (once is enough: the other entries follow its outcome).</summary>
        public bool FailoverTried { get; set; }

        /// <summary>The server the failover made the primary; null when none.</summary>
        public NodeEndpoint? NewPrimary { get; set; }

        /// <summary>The entry whose failover decided (for the log of the entries that follow it).</summary>
        public string? Leader { get; set; }

        /// <summary>failover_command ran for a lost standby already.</summary>
        public bool StandbyCommandQueued { get; set; }
    }

    /// <summary>Under the entry's gate: takes the node out of one entry and, if it was its primary, fails over or follows the failover.</summary>
    private async Task MarkDownAsync(DatabaseTopology topology, Node node, string reason, Loss loss, Dictionary<NodeEndpoint, Func<Task>> followUps)
    {
        if (node.Status != NodeStatus.Up)
        {
            return;
        }

        bool wasPrimary = topology.Primary == node;
        bool confirmed = topology.PrimaryConfirmed;
        Change(topology, node, node.Role, NodeStatus.Down, reason, notify: !wasPrimary);
        Detach(node, $"node {node.Id} ({node.Endpoint.Host}:{node.Endpoint.Port}) is down: {reason}");
        if (wasPrimary)
        {
            topology.SetPrimary(null, confirmed: false);
            Node? primary = null;
            if (loss.FailoverTried)
            {
                primary = Adopt(topology, node, loss);
            }
            else if (confirmed)
            {
                loss.FailoverTried = true;
                loss.Leader = topology.Config.Name;
                primary = await FailoverAsync(topology, node).ConfigureAwait(false);
                loss.NewPrimary = primary?.Endpoint;
            }
            else
            {
                Log.FailoverProblem(Logger, topology.Config.Name, node.Id, "it was never seen as the primary by a check; nothing is promoted, writes wait for a check to find the primary");
            }

            if (primary is not null && runtime.Config.FastPool.Failover.FollowPrimaryCommand is { } follow)
            {
                foreach (var other in topology.Nodes)
                {
                    if (other != node && other != primary && !followUps.ContainsKey(other.Endpoint))
                    {
                        followUps[other.Endpoint] = () => RunCommandAsync("follow_primary_command", follow, Values(topology, other, primary, node));
                    }
                }
            }
        }
        else if (!loss.StandbyCommandQueued && runtime.Config.FastPool.Failover is { Mode: FailoverMode.Command, FailoverCommand: { } command })
        {
            // As Pgpool-II does, failover_command runs for a lost standby too (%m is then the unchanged primary); once per server.
            loss.StandbyCommandQueued = true;
            var current = topology.Primary;
            followUps[node.Endpoint] = () => RunCommandAsync("failover_command", command, Values(topology, node, current, current));
        }
    }

    /// <summary>
    /// Another entry listing the same lost primary already failed over: this one takes the server that entry
    /// promoted, when it lists it too; otherwise writes wait (promoting another standby would make two primaries).
    /// </summary>
    private Node? Adopt(DatabaseTopology topology, Node failed, Loss loss)
    {
        var promoted = loss.NewPrimary;
        var node = promoted is null ? null : topology.Nodes.FirstOrDefault(n => n.Endpoint == promoted);
        if (node is null || node.Status is NodeStatus.Detached or NodeStatus.NeedsRecovery)
        {
            Log.FailoverProblem(Logger, topology.Config.Name, failed.Id, promoted is null
                ? "the failover for another entry listing the same server promoted nothing; writes wait until a primary is back"
                : $"the server promoted for another entry ({promoted.Host}:{promoted.Port}) is not usable in this entry; writes wait until a check finds a primary");
            return null;
        }

        Change(topology, node, NodeRole.Primary, NodeStatus.Up, $"promoted: replaces node {failed.Id}", notify: false);
        ForgetLoginErrors(node);
        topology.SetPrimary(node, confirmed: true);
        Log.FailoverFollowed(Logger, topology.Config.Name, failed.Id, node.Id, node.Endpoint.Host, node.Endpoint.Port, loss.Leader ?? "?");
        return node;
    }

    /// <summary>The primary is lost: picks and promotes the standby with the most WAL; the new primary, or null.</summary>
    private async Task<Node?> FailoverAsync(DatabaseTopology topology, Node failed)
    {
        var config = runtime.Config;
        var settings = config.FastPool.Failover;
        string db = topology.Config.Name;
        long started = runtime.Time.GetTimestamp();
        if (settings.Mode == FailoverMode.Off)
        {
            Log.FailoverProblem(Logger, db, failed.Id, "failover = off: the node is detached; writes wait until a primary is back");
            return null;
        }

        var candidates = topology.Nodes.Where(n => n != failed && n.Status == NodeStatus.Up).ToList();
        var login = HealthLogin(config, topology.Config);
        var checks = await Task.WhenAll(candidates.Select(n => NodeProbe.CheckAsync(runtime, config, topology.Config, n, login, settings.HealthCheckTimeout, CancellationToken.None)))
            .ConfigureAwait(false);
        Node? chosen = null;
        ulong best = 0;
        for (int i = 0; i < candidates.Count; i++)
        {
            var check = checks[i].Check;
            if (checks[i].Failure != ProbeFailure.None)
            {
                continue;
            }

            if (!check.InRecovery)
            {
                // Someone already promoted it (an operator, or another entry over the same servers): take it as is.
                chosen = candidates[i];
                best = ulong.MaxValue;
                break;
            }

            // A promotion replays everything the standby has received, so received WAL is what counts.
            ulong wal = Math.Max(check.ReceivedLsn, check.WalLsn);
            if (chosen is null || wal > best)
            {
                chosen = candidates[i];
                best = wal;
            }
        }

        if (chosen is null)
        {
            Log.FailoverProblem(Logger, db, failed.Id, "no reachable standby to promote; writes wait until a primary is back");
            return null;
        }

        bool promoted = best == ulong.MaxValue || await PromoteAsync(topology, failed, chosen, settings).ConfigureAwait(false);
        Node? primary = !promoted ? null
            : settings.Mode == FailoverMode.Command ? await WaitForPrimaryAsync(topology, candidates, settings.FailoverCommandTimeout).ConfigureAwait(false)
            : chosen;
        if (primary is null)
        {
            Log.FailoverProblem(Logger, db, failed.Id, $"node {chosen.Id} did not leave recovery; writes wait until a check finds a primary");
            return null;
        }

        Change(topology, primary, NodeRole.Primary, NodeStatus.Up, $"promoted: replaces node {failed.Id}", notify: false);
        ForgetLoginErrors(primary);
        topology.SetPrimary(primary, confirmed: true);
        Log.FailoverDone(Logger, db, failed.Id, primary.Id, primary.Endpoint.Host, primary.Endpoint.Port, (long)runtime.Time.GetElapsedTime(started).TotalMilliseconds);
        return primary;
    }

    /// <summary>follow_primary_command for every node of the entry but the failed one and the new primary.</summary>
    private List<Func<Task>>? FollowPrimary(DatabaseTopology topology, Node failed, Node? primary)
    {
        if (primary is null || runtime.Config.FastPool.Failover.FollowPrimaryCommand is not { } follow)
        {
            return null;
        }

        return topology.Nodes.Where(n => n != failed && n != primary)
            .Select(n => (Func<Task>)(() => RunCommandAsync("follow_primary_command", follow, Values(topology, n, primary, failed))))
            .ToList();
    }

    private async Task<bool> PromoteAsync(DatabaseTopology topology, Node failed, Node chosen, FailoverSettings settings)
    {
        var config = runtime.Config;
        if (settings.Mode == FailoverMode.Command)
        {
            if (settings.FailoverCommand is not { } command)
            {
                Log.FailoverProblem(Logger, topology.Config.Name, failed.Id, "failover = command but failover_command is empty");
                return false;
            }

            await RunCommandAsync("failover_command", command, Values(topology, failed, chosen, failed)).ConfigureAwait(false);
            return true;
        }

        var login = NodeProbe.CheckLogin(config, topology.Config, settings.FailoverUser ?? settings.HealthCheckUser, settings.FailoverUser is null ? settings.HealthCheckPassword : settings.FailoverPassword);
        try
        {
            if (await NodeProbe.PromoteAsync(runtime, config, topology.Config, chosen, login, settings.FailoverCommandTimeout).ConfigureAwait(false))
            {
                return true;
            }

            Log.FailoverProblem(Logger, topology.Config.Name, failed.Id, $"node {chosen.Id} was still in recovery {settings.FailoverCommandTimeout.TotalSeconds:0.###} s after pg_promote()");
        }
        catch (Exception ex)
        {
            Log.FailoverProblem(Logger, topology.Config.Name, failed.Id, $"pg_promote() on node {chosen.Id} failed: {ServerConnector.Describe(ex)}");
        }

        return false;
    }

    /// <summary>Polls until one of the nodes is out of recovery; it is the new primary.</summary>
    private async Task<Node?> WaitForPrimaryAsync(DatabaseTopology topology, IReadOnlyList<Node> nodes, TimeSpan timeout)
    {
        var config = runtime.Config;
        var login = HealthLogin(config, topology.Config);
        long start = runtime.Time.GetTimestamp();
        while (true)
        {
            foreach (var node in nodes)
            {
                var probe = await NodeProbe.CheckAsync(runtime, config, topology.Config, node, login, config.FastPool.Failover.HealthCheckTimeout, CancellationToken.None).ConfigureAwait(false);
                if (probe.Failure == ProbeFailure.None && !probe.Check.InRecovery)
                {
                    return node;
                }
            }

            if (runtime.Time.GetElapsedTime(start) > timeout)
            {
                return null;
            }

            await Task.Delay(s_promotePoll, runtime.Time).ConfigureAwait(false);
        }
    }

    internal static (string User, string? Password) HealthLogin(ProxyConfig config, DatabaseConfig database)
    {
        var f = config.FastPool.Failover;
        return NodeProbe.CheckLogin(config, database, f.HealthCheckUser, f.HealthCheckPassword);
    }

    private FailoverCommandValues Values(DatabaseTopology topology, Node failed, Node? newPrimary, Node? oldPrimary) =>
        new(failed, DataDir(failed), newPrimary, newPrimary is null ? null : DataDir(newPrimary), oldPrimary);

    private string? DataDir(Node node)
    {
        var dirs = runtime.Config.FastPool.Failover.DataDirectories;
        return node.Id < dirs.Count ? dirs[node.Id] : null;
    }

    private Task RunCommandAsync(string what, string template, FailoverCommandValues values)
    {
        var command = FailoverCommand.Format(template, values);
        return FailoverCommand.RunAsync(what, command, runtime.Config.FastPool.Failover.FailoverCommandTimeout, Logger, CancellationToken.None);
    }

    private static bool StreamsFrom(NodeCheck check, Node primary) =>
        string.Equals(check.StreamingFrom, $"{primary.Endpoint.Host}:{primary.Endpoint.Port.ToString(CultureInfo.InvariantCulture)}", StringComparison.OrdinalIgnoreCase);

    private void Fence(DatabaseTopology topology, Node node, string reason)
    {
        bool changed = node.Status != NodeStatus.NeedsRecovery;
        Change(topology, node, NodeRole.Primary, NodeStatus.NeedsRecovery, reason);
        if (changed)
        {
            Log.NodeFenced(Logger, topology.Config.Name, node.Id, node.Endpoint.Host, node.Endpoint.Port, reason);
            Detach(node, $"node {node.Id} is fenced: {reason}");
        }
    }

    /// <summary>Sets role and status with a reason; a change is logged and wakes clients waiting for the topology.</summary>
    internal void Change(DatabaseTopology topology, Node node, NodeRole role, NodeStatus status, string reason, bool notify = true)
    {
        if (!node.SetState(role, status, reason, runtime.Time.GetUtcNow()))
        {
            return;
        }

        Log.NodeChanged(Logger, topology.Config.Name, node.Id, node.Endpoint.Host, node.Endpoint.Port,
            role.ToString().ToLowerInvariant(), StatusText(status), reason);
        if (notify)
        {
            topology.NotifyChanged();
        }
    }

    internal static string StatusText(NodeStatus status) => status switch
    {
        NodeStatus.Up => "up",
        NodeStatus.Down => "down",
        NodeStatus.Detached => "detached",
        _ => "needs_recovery",
    };

    /// <summary>Stops using a node: its pools close their connections and fail their waiting clients over.</summary>
    internal void Detach(Node node, string why)
    {
        var error = new ServerException(SqlState.ConnectionFailure, why);
        foreach (var pool in runtime.Pools.Pools)
        {
            if (pool.Node == node)
            {
                pool.DetachNode(error);
            }
        }
    }

    private void ForgetLoginErrors(Node node)
    {
        foreach (var pool in runtime.Pools.Pools)
        {
            if (pool.Node == node)
            {
                pool.ForgetLoginError();
            }
        }
    }
}
