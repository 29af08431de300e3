using System.Globalization;
using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;
using Microsoft.Extensions.Logging;

namespace FastPool.Proxy.Topology;

/// <summary>
/// Detects each node's role and replication delay, as Pgpool-II's streaming-replication check does: every
/// <c>sr_check_period</c> it logs in to every node of each database entry that lists more than one, on its
/// own short-lived connection (never a client's pool, so a busy pool cannot delay it), and asks whether the
/// node is in recovery and how far its WAL is. Roles are detected, never configured; a node that cannot be
/// reached is marked down. Entries with a single node are left alone: PgBouncer users expect no extra
/// connections there.
/// </summary>
internal sealed class NodeMonitor
{
    // PostgreSQL docs 9.27.4: pg_is_in_recovery, pg_last_wal_replay_lsn, pg_current_wal_lsn, pg_last_xact_replay_timestamp.
    private const string CheckQuery =
        "SELECT pg_is_in_recovery(), " +
        "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, " +
        "EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))";

    private readonly ProxyRuntime _runtime;
    private int _running;

    public NodeMonitor(ProxyRuntime runtime)
    {
        _runtime = runtime;
    }

    /// <summary>One round over every multi-node database entry; overlapping rounds are skipped.</summary>
    public async Task CheckAllAsync(CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _running, 1) != 0)
        {
            return;
        }

        try
        {
            var config = _runtime.Config;
            var entries = config.Databases.Where(d => d.Nodes.Count > 1).ToList();
            await Task.WhenAll(entries.Select(d => CheckAsync(config, _runtime.GetTopology(d), ct))).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    public async Task CheckAsync(ProxyConfig config, DatabaseTopology topology, CancellationToken ct)
    {
        var checks = await Task.WhenAll(topology.Nodes.Select(n => CheckNodeAsync(config, topology.Config, n, ct))).ConfigureAwait(false);

        // Delay in bytes is measured against the primary's current WAL position (the highest if, wrongly, two claim it).
        ulong primaryLsn = checks.Where(c => c.Reachable && !c.InRecovery).Select(c => c.WalLsn).DefaultIfEmpty(0UL).Max();
        var now = _runtime.Time.GetUtcNow();
        for (int i = 0; i < checks.Length; i++)
        {
            var check = checks[i];
            if (check.Reachable && check.InRecovery && primaryLsn > 0)
            {
                check = check with { DelayBytes = primaryLsn > check.WalLsn ? (long)(primaryLsn - check.WalLsn) : 0 };
            }

            var node = topology.Nodes[i];
            var before = (node.Role, node.Status);
            node.Apply(check, now);
            if (before != (node.Role, node.Status))
            {
                Log.NodeChanged(_runtime.Logger, topology.Config.Name, node.Id, node.Endpoint.Host, node.Endpoint.Port,
                    node.Role.ToString().ToLowerInvariant(), node.Status.ToString().ToLowerInvariant(), node.LastChangeReason);
            }
        }
    }

    private async Task<NodeCheck> CheckNodeAsync(ProxyConfig config, DatabaseConfig database, Node node, CancellationToken ct)
    {
        var settings = config.FastPool;
        var user = settings.SrCheckUser ?? database.User ?? "postgres";
        string? password = settings.SrCheckPassword ?? (database.User == user ? database.Password : null);
        if (password is null && config.AuthFileUsers.TryGetValue(user, out var secret) && !secret.StartsWith("md5", StringComparison.Ordinal)
            && !secret.StartsWith("SCRAM-SHA-256$", StringComparison.Ordinal))
        {
            password = secret;
        }

        var entry = database with { User = user, Password = password, DbName = settings.SrCheckDatabase };
        var key = new PoolKey(entry, settings.SrCheckDatabase, user, password);
        var pool = new ServerPool(_runtime.Pools, key, node, PoolSettings.From(config, entry, null), new LimitCounter(0), new LimitCounter(0), _runtime.Time, _runtime.Logger);
        var timeout = config.ServerConnectTimeout > TimeSpan.Zero ? config.ServerConnectTimeout : TimeSpan.FromSeconds(15);
        ServerConnection? server = null;
        try
        {
            server = await ServerConnector.OpenAsync(pool, node, 0, _runtime.Time.GetTimestamp(), timeout, ct).ConfigureAwait(false);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            var row = await MessageIo.QueryFirstRowAsync(server, new MessageBuilder(), CheckQuery, cts.Token).ConfigureAwait(false);
            bool inRecovery = row[0] == "t";
            ulong lsn = TryParseLsn(row[1], out var parsed) ? parsed : 0;
            double? delay = inRecovery && double.TryParse(row[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) ? Math.Max(0, seconds) : null;
            return new NodeCheck(true, inRecovery, lsn, delay, null);
        }
        catch (Exception ex)
        {
            // Whatever went wrong, the node did not answer the check; the monitor itself must keep running.
            return NodeCheck.Failed(ex is OperationCanceledException ? "timed out" : ex.Message);
        }
        finally
        {
            if (server is not null)
            {
                try
                {
                    await server.Connection.SendAsync(Messages.Terminate, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
                {
                }

                await server.Connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Parses a pg_lsn text value "X/Y" (two hexadecimal halves) into its 64-bit position.</summary>
    public static bool TryParseLsn(string? text, out ulong lsn)
    {
        lsn = 0;
        int slash = text?.IndexOf('/') ?? -1;
        if (slash <= 0
            || !uint.TryParse(text.AsSpan(0, slash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var high)
            || !uint.TryParse(text.AsSpan(slash + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var low))
        {
            return false;
        }

        lsn = ((ulong)high << 32) | low;
        return true;
    }
}
