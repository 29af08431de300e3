namespace FastPool.Proxy.Topology;

/// <summary>
/// Per-node health checks of every database entry that lists more than one node: each node is probed every
/// health_check_period on a connection of its own, and at once when a client session loses its server
/// connection. A node is declared down only when a probe is refused (nothing listens: the postmaster is gone)
/// or when health_check_max_retries further probes, health_check_retry_delay apart, got no answer either. An
/// error from a live server (a terminated backend, a refused login) is never a reason: the probe then succeeds.
/// A server is identified by host:port: entries that list the same one share its probe and its verdict.
/// </summary>
internal sealed class HealthChecker(ProxyRuntime runtime, FailoverCoordinator failover) : IAsyncDisposable
{
    // How many times in a row a probe whose answer came stale is taken again before the next round is left to it.
    private const int MaxStaleRetries = 3;

    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _timerLock = new();
    private readonly Lock _probeLock = new();

    // The probe sequence running for each server (host:port), so concurrent suspicions join it.
    private readonly Dictionary<Configuration.NodeEndpoint, Task> _probes = [];
    private ITimer? _timer;
    private TimeSpan _period;

    public void Start()
    {
        lock (_timerLock)
        {
            // A first round at once: with several nodes, writes wait until a check has found the primary.
            _period = runtime.Config.FastPool.Failover.HealthCheckPeriod;
            _timer = runtime.Time.CreateTimer(_ => CheckAll(), null, TimeSpan.Zero, _period > TimeSpan.Zero ? _period : Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>A reload changed health_check_period: the next round comes one new period from now.</summary>
    public void Retime(TimeSpan period)
    {
        lock (_timerLock)
        {
            if (_timer is null || period == _period)
            {
                return;
            }

            _period = period;
            var due = period > TimeSpan.Zero ? period : Timeout.InfiniteTimeSpan;
            _timer.Change(due, due);
        }
    }

    private void CheckAll()
    {
        var config = runtime.Config;
        var probed = new HashSet<Configuration.NodeEndpoint>();
        foreach (var database in config.Databases.Append(config.FallbackDatabase))
        {
            if (database is null || database.Nodes.Count < 2)
            {
                continue;
            }

            var topology = runtime.GetTopology(database);
            foreach (var node in topology.Nodes)
            {
                // A server listed by several entries is probed once; the verdict goes to each of them.
                if (probed.Add(node.Endpoint))
                {
                    _ = ConfirmAsync(topology, node, null);
                }
            }
        }
    }

    /// <summary>Probes every node of the entry now (joining probes under way): a client waits for a primary.</summary>
    public void CheckNow(DatabaseTopology topology)
    {
        foreach (var node in topology.Nodes)
        {
            _ = ConfirmAsync(topology, node, null);
        }
    }

    /// <summary>
    /// A client session lost its connection to the node, or could not open one: probe it now (joining a probe
    /// already under way). Completes when the node's status is decided.
    /// </summary>
    public Task SuspectAsync(DatabaseTopology topology, Node node, string reason)
    {
        if (topology.Nodes.Length < 2 || node.Status != NodeStatus.Up || _stopping.IsCancellationRequested)
        {
            return Task.CompletedTask;
        }

        if (runtime.Config.FastPool.Failover.FailoverOnBackendError)
        {
            // Pgpool-II's failover_on_backend_error: fast, but a terminated backend fails the node over too.
            return failover.OnDownAsync(topology, node, "backend error: " + reason);
        }

        Log.NodeSuspected(runtime.Logger, topology.Config.Name, node.Id, node.Endpoint.Host, node.Endpoint.Port, reason);
        return ConfirmAsync(topology, node, reason);
    }

    /// <summary>
    /// Probes a server (one sequence per host:port at a time, however many entries list it and however many
    /// sessions see it fail at once) and hands the verdict to the coordinator for every entry that lists it.
    /// </summary>
    public Task ConfirmAsync(DatabaseTopology topology, Node node, string? suspicion)
    {
        var members = failover.NodesAt(topology, node);
        if (suspicion is not null)
        {
            // Reads go elsewhere until the probe decides, in every entry.
            foreach (var (_, member) in members)
            {
                member.Suspected = true;
            }
        }

        lock (_probeLock)
        {
            if (_probes.TryGetValue(node.Endpoint, out var running) && !running.IsCompleted)
            {
                return running;
            }

            var probe = Task.Run(() => ProbeSequenceAsync(members, suspicion));
            _probes[node.Endpoint] = probe;
            return probe;
        }
    }

    private async Task ProbeSequenceAsync(List<(DatabaseTopology Topology, Node Node)> members, string? suspicion)
    {
        var (topology, node) = members[0];
        var config = runtime.Config;
        var settings = config.FastPool.Failover;
        var login = FailoverCoordinator.HealthLogin(config, topology.Config);
        int attempts = settings.HealthCheckMaxRetries + 1;
        try
        {
            int stale = 0;
            for (int attempt = 1; ; attempt++)
            {
                var stamps = members.Select(m => m.Topology.Stamp(m.Node)).ToArray();
                var probe = await NodeProbe.CheckAsync(runtime, config, topology.Config, node, login, settings.HealthCheckTimeout, _stopping.Token).ConfigureAwait(false);
                switch (probe.Failure)
                {
                    case ProbeFailure.None:
                        bool applied = true;
                        for (int i = 0; i < members.Count; i++)
                        {
                            applied &= await failover.OnReachableAsync(members[i].Topology, members[i].Node, probe.Check, stamps[i]).ConfigureAwait(false);
                        }

                        // A check overtaken by a decision (the first round of checks finds a standby while another
                        // node's check makes the primary known) is taken again at once: with health_check_period = 0
                        // no later round would.
                        if (!applied && ++stale <= MaxStaleRetries)
                        {
                            attempt--;
                            continue;
                        }

                        return;
                    case ProbeFailure.Answered:
                        // Alive, but our login or query was refused: nothing to fail over.
                        foreach (var (entry, member) in members)
                        {
                            await failover.OnUncheckableAsync(entry, member, probe.Check.Error ?? "?").ConfigureAwait(false);
                        }

                        return;
                    case ProbeFailure.Refused:
                        await failover.OnDownAsync(topology, node, "health check: " + probe.Check.Error).ConfigureAwait(false);
                        return;
                }

                if (node.Status == NodeStatus.Up)
                {
                    Log.HealthCheckFailed(runtime.Logger, topology.Config.Name, node.Id, node.Endpoint.Host, node.Endpoint.Port, attempt, attempts, probe.Check.Error ?? "?");
                }

                if (attempt >= attempts)
                {
                    string why = $"health check: no answer after {attempts} attempts: {probe.Check.Error}";
                    await failover.OnDownAsync(topology, node, suspicion is null ? why : $"{why} (after: {suspicion})").ConfigureAwait(false);
                    return;
                }

                await Task.Delay(settings.HealthCheckRetryDelay, runtime.Time, _stopping.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Shutting down.
        }
        catch (Exception ex)
        {
            // Nobody awaits a periodic probe: a bug here must be seen in the log, and must not stop later probes.
            Log.Unexpected(runtime.Logger, 0, ex.Message, ex);
        }
        finally
        {
            // Decided (up, down or uncheckable): the node's status speaks for it from now on.
            foreach (var (_, member) in members)
            {
                member.Suspected = false;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        if (_timer is not null)
        {
            await _timer.DisposeAsync().ConfigureAwait(false);
        }
    }
}
