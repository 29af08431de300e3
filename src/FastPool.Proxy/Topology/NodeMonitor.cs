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
            var entries = config.Databases.Append(config.FallbackDatabase).OfType<DatabaseConfig>().Where(d => d.Nodes.Count > 1).ToList();
            await Task.WhenAll(entries.Select(d => CheckAsync(config, _runtime.GetTopology(d), ct))).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    public async Task CheckAsync(ProxyConfig config, DatabaseTopology topology, CancellationToken ct)
    {
        var stamps = topology.Nodes.Select(topology.Stamp).ToArray();
        var probes = await Task.WhenAll(topology.Nodes.Select(n => CheckNodeAsync(config, topology.Config, n, ct))).ConfigureAwait(false);
        var checks = probes.Select(p => p.Check).ToArray();

        // Delay in bytes is measured against the primary's current WAL position (the highest if, wrongly, two claim it).
        // With no primary reachable (a failover under way) it is measured against the last position seen: the
        // standbys' delay is what it was, and a delay_threshold must not stop their reads for want of a primary.
        ulong primaryLsn = checks.Where(c => c.Reachable && !c.InRecovery).Select(c => c.WalLsn).DefaultIfEmpty(0UL).Max();
        if (primaryLsn > 0)
        {
            topology.LastPrimaryLsn = primaryLsn;
        }
        else
        {
            primaryLsn = topology.LastPrimaryLsn;
        }
        for (int i = 0; i < checks.Length; i++)
        {
            var check = checks[i];
            if (check.Reachable && check.InRecovery && primaryLsn > 0)
            {
                check = check with { DelayBytes = primaryLsn > check.WalLsn ? (long)(primaryLsn - check.WalLsn) : 0 };
            }

            var node = topology.Nodes[i];
            node.Record(check);

            // Role and status are decided in one place: a reachable node's role goes to the coordinator, an
            // unreachable one is only a suspicion until the health checks confirm it.
            if (check.Reachable)
            {
                await _runtime.Failover.OnReachableAsync(topology, node, check, stamps[i]).ConfigureAwait(false);
            }
            else
            {
                _ = _runtime.Health.SuspectAsync(topology, node, "replication check: " + check.Error);
            }
        }
    }

    private Task<ProbeResult> CheckNodeAsync(ProxyConfig config, DatabaseConfig database, Node node, CancellationToken ct)
    {
        var timeout = config.ServerConnectTimeout > TimeSpan.Zero ? config.ServerConnectTimeout : TimeSpan.FromSeconds(15);
        return NodeProbe.CheckAsync(_runtime, config, database, node, NodeProbe.CheckLogin(config, database), timeout, ct);
    }

    /// <summary>
    /// The query read_your_writes asks the primary after a write: its WAL insert position, where that position lies in
    /// its WAL file, and the WAL page size (PostgreSQL docs 9.27.3 "Backup Control Functions"; 20.15 "Preset Options").
    /// </summary>
    public const string WalPositionQuery =
        "SELECT l, o.file_offset, pg_catalog.current_setting('wal_block_size') " +
        "FROM pg_catalog.pg_current_wal_insert_lsn() l, pg_catalog.pg_walfile_name_offset(l) o";

    // Page header sizes of a 64-bit build (MAXALIGN 8): every WAL page starts with a short header, the first page of
    // a WAL file with a long one (access/xlog_internal.h, PostgreSQL docs 30.6 "WAL Internals").
    private const long ShortPageHeader = 24;
    private const long LongPageHeader = 40;

    /// <summary>
    /// The position every record written so far ends at or before, from a row of <see cref="WalPositionQuery"/>;
    /// ulong.MaxValue when the row cannot be read (no standby is then known to have the client's write).
    /// </summary>
    /// <remarks>
    /// On a page that holds no record yet the insert position points past the page's header, while a standby that
    /// replayed everything reports the end of the last record: the page boundary. After a WAL file switch (archive_timeout,
    /// pg_switch_wal, a base backup) that is where an idle primary stays, and reads that must see the client's write
    /// would wait on the primary for unrelated WAL to move the standby on. The header is therefore not counted.
    /// </remarks>
    public static ulong CommitBound(string?[] row)
    {
        if (row.Length == 0 || !TryParseLsn(row[0], out var lsn))
        {
            return ulong.MaxValue;
        }

        if (row.Length >= 3
            && long.TryParse(row[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out long fileOffset)
            && long.TryParse(row[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out long pageSize) && pageSize > LongPageHeader)
        {
            if (fileOffset == LongPageHeader)
            {
                return lsn - LongPageHeader;
            }

            if (fileOffset > pageSize && fileOffset % pageSize == ShortPageHeader)
            {
                return lsn - ShortPageHeader;
            }
        }

        return lsn;
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
