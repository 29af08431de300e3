using System.Text;
using FastPool.Proxy.Topology;

namespace FastPool.Proxy.Metrics;

/// <summary>What /metrics serves: the process, every pool (gauges now, counters and histograms since start) and every node.</summary>
internal static class MetricsReport
{
    public static string Render(ProxyRuntime runtime)
    {
        var text = new StringBuilder(8192);
        var w = new PrometheusWriter(text);
        WriteProcess(w, runtime);
        WritePools(w, PoolGauges.Collect(runtime));
        WriteTraffic(w, [.. runtime.Stats.Databases.SelectMany(d => d.Users).OrderBy(t => t.Database, StringComparer.Ordinal).ThenBy(t => t.User, StringComparer.Ordinal)]);
        WriteNodes(w, runtime);
        WriteCache(w, runtime);
        return text.ToString();
    }

    /// <summary>The result cache (memory_cache_enabled); nothing while it is off.</summary>
    private static void WriteCache(PrometheusWriter w, ProxyRuntime runtime)
    {
        if (runtime.Cache is not { } cache)
        {
            return;
        }

        var stats = cache.Stats;
        w.Single("fastpool_cache_hits_total", "counter", "Requests answered from the result cache, without a server.", stats.Hits);
        w.Single("fastpool_cache_misses_total", "counter", "Cache candidates (read-only SELECTs outside transactions) that went to a server.", stats.Misses);
        w.Single("fastpool_cache_entries", "gauge", "Results in the cache.", stats.Entries);
        w.Single("fastpool_cache_bytes", "gauge", "Bytes the cached results take (memqcache_total_size bounds it).", stats.Bytes);
        w.Single("fastpool_cache_evictions_total", "counter", "Results dropped to stay within memqcache_total_size.", stats.Evictions);
        w.Single("fastpool_cache_declined_total", "counter", "Misses not stored because the cache was nearly full and the key had not been missed recently.", stats.Declined);
        w.Single("fastpool_cache_invalidations_total", "counter", "Invalidations by writes (through FastPool, triggers or other instances).", stats.Invalidations);
    }

    private static void WriteProcess(PrometheusWriter w, ProxyRuntime runtime)
    {
        w.Single("fastpool_info", "gauge", "FastPool's version; always 1.", 1, ("version", Admin.AdminConsole.ProductVersion));
        w.Single("fastpool_start_time_seconds", "gauge", "When this FastPool process started, in seconds since the Unix epoch.", runtime.StartedAt.ToUnixTimeMilliseconds() / 1000.0);
        w.Single("fastpool_accepting", "gauge", "1 while FastPool takes new work (what /healthz reports), 0 while paused, suspended or shutting down.", runtime.NotAcceptingReason is null ? 1 : 0);
        w.Single("fastpool_paused", "gauge", "1 while PAUSE (without a database) is in effect.", runtime.Control.IsPausedAll ? 1 : 0);
        w.Single("fastpool_suspended", "gauge", "1 while SUSPEND is in effect.", runtime.Control.IsSuspended ? 1 : 0);
        w.Single("fastpool_shutting_down", "gauge", "1 once a shutdown has started.", runtime.ShuttingDown ? 1 : 0);
        w.Single("fastpool_clients", "gauge", "Client connections, logging in or logged in, the admin console's included.", runtime.Clients.Count);
        w.Single("fastpool_servers", "gauge", "Server connections over all pools.", runtime.Pools.AllPools.Sum(p => p.TotalCount));

        // The forwarding path is meant to allocate nothing: a rising allocation rate under steady load says otherwise.
        w.Single("fastpool_allocated_bytes_total", "counter", "Bytes of managed memory allocated since start (all threads).", GC.GetTotalAllocatedBytes());
        w.Single("fastpool_gc_collections_total", "counter", "Garbage collections since start, of generation 0 (which includes the older ones).", GC.CollectionCount(0));
        w.Single("fastpool_resident_memory_bytes", "gauge", "Resident memory of the process (working set).", Environment.WorkingSet);
    }

    private static void WritePools(PrometheusWriter w, List<PoolGauges> pools)
    {
        Gauge(w, pools, "fastpool_pool_clients_active", "Clients holding a server or idle between transactions (SHOW POOLS cl_active).", p => p.ClientsActive);
        Gauge(w, pools, "fastpool_pool_clients_waiting", "Clients waiting for a server (cl_waiting).", p => p.ClientsWaiting);
        Gauge(w, pools, "fastpool_pool_servers_active", "Servers linked to a client (sv_active).", p => p.ServersActive);
        Gauge(w, pools, "fastpool_pool_servers_idle", "Idle servers ready for use (sv_idle).", p => p.ServersIdle);
        Gauge(w, pools, "fastpool_pool_servers_used", "Idle servers that are checked before their next use (sv_used).", p => p.ServersUsed);
        Gauge(w, pools, "fastpool_pool_servers_tested", "Servers running server_check_query or a reset (sv_tested).", p => p.ServersTested);
        Gauge(w, pools, "fastpool_pool_servers_login", "Servers logging in (sv_login).", p => p.ServersLogin);
        Gauge(w, pools, "fastpool_pool_max_wait_seconds", "How long the oldest waiting client has waited (maxwait).", p => p.MaxWait.TotalSeconds);
        Gauge(w, pools, "fastpool_pool_pinned_clients", "Clients pinned to their server by session state in transaction/statement pooling.", p => p.PinnedClients);
    }

    private static void Gauge(PrometheusWriter w, List<PoolGauges> pools, string name, string help, Func<PoolGauges, double> value)
    {
        w.Family(name, "gauge", help);
        foreach (var p in pools)
        {
            w.Sample(name, value(p), ("database", p.Database), ("user", p.User));
        }
    }

    private static void WriteTraffic(PrometheusWriter w, List<PoolTraffic> pools)
    {
        Counter(w, pools, "fastpool_transactions_total", "Transactions completed (ReadyForQuery idle), as SHOW STATS xact_count.", t => t.Transactions);
        Counter(w, pools, "fastpool_queries_total", "Queries sent to servers (Query, Execute, FunctionCall), as SHOW STATS query_count.", t => t.Queries);
        Counter(w, pools, "fastpool_received_bytes_total", "Bytes received from clients and forwarded to servers.", t => t.BytesIn);
        Counter(w, pools, "fastpool_sent_bytes_total", "Bytes received from servers and forwarded to clients.", t => t.BytesOut);
        Counter(w, pools, "fastpool_server_assignments_total", "Times a client was given a server.", t => t.Assignments);

        w.Family("fastpool_errors_total", "counter", "Errors clients were sent, by SQLSTATE class (first two characters; ?? when unreadable).");
        foreach (var t in pools)
        {
            foreach (var (sqlClass, count) in t.ErrorsByClass())
            {
                w.Sample("fastpool_errors_total", count, ("database", t.Database), ("user", t.User), ("class", sqlClass));
            }
        }

        Histogram(w, pools, "fastpool_wait_seconds", "How long clients waited for a server.", t => t.WaitTime);
        Histogram(w, pools, "fastpool_query_duration_seconds", "Query round trips: from the client's query until the server is ready again (a pipelined batch counts once).", t => t.QueryTime);
        Histogram(w, pools, "fastpool_transaction_duration_seconds", "Transactions: from the client's first query until the server is idle again.", t => t.TransactionTime);
    }

    private static void Counter(PrometheusWriter w, List<PoolTraffic> pools, string name, string help, Func<PoolTraffic, long> value)
    {
        w.Family(name, "counter", help);
        foreach (var t in pools)
        {
            w.Sample(name, value(t), ("database", t.Database), ("user", t.User));
        }
    }

    private static void Histogram(PrometheusWriter w, List<PoolTraffic> pools, string name, string help, Func<PoolTraffic, LatencyHistogram> histogram)
    {
        w.Family(name, "histogram", help);
        foreach (var t in pools)
        {
            w.Histogram(name, histogram(t), ("database", t.Database), ("user", t.User));
        }
    }

    private static void WriteNodes(PrometheusWriter w, ProxyRuntime runtime)
    {
        var nodes = NodeRows(runtime);
        w.Family("fastpool_node_up", "gauge", "1 when the node answered its last check (or was never checked), 0 when it is down.");
        foreach (var (db, node) in nodes)
        {
            w.Sample("fastpool_node_up", node.Status == NodeStatus.Up ? 1 : 0, NodeLabels(db, node));
        }

        w.Family("fastpool_node_role", "gauge", "1 for the node's current role (primary, standby or unknown, as SHOW POOL_NODES shows it).");
        foreach (var (db, node) in nodes)
        {
            var labels = NodeLabels(db, node);
            w.Sample("fastpool_node_role", 1, labels[0], labels[1], labels[2], labels[3], ("role", RoleName(node.Role)));
        }

        w.Family("fastpool_node_status", "gauge", "1 for the node's current status (up, down, detached or needs_recovery, as SHOW POOL_NODES shows it).");
        foreach (var (db, node) in nodes)
        {
            var labels = NodeLabels(db, node);
            w.Sample("fastpool_node_status", 1, labels[0], labels[1], labels[2], labels[3], ("status", Topology.FailoverCoordinator.StatusText(node.Status)));
        }

        // The reason itself is free text, so it stays in SHOW POOL_NODES and the log; here is when it changed.
        w.Family("fastpool_node_last_change_timestamp_seconds", "gauge", "Unix time of the node's last role or status change (SHOW POOL_NODES last_status_change).");
        foreach (var (db, node) in nodes)
        {
            w.Sample("fastpool_node_last_change_timestamp_seconds", node.LastStatusChange.ToUnixTimeMilliseconds() / 1000.0, NodeLabels(db, node));
        }

        w.Family("fastpool_node_replication_delay_bytes", "gauge", "WAL bytes a standby is behind its primary (0 for a primary), from the last check.");
        foreach (var (db, node) in nodes)
        {
            if (node.LastCheck?.DelayBytes is { } bytes)
            {
                w.Sample("fastpool_node_replication_delay_bytes", bytes, NodeLabels(db, node));
            }
        }

        w.Family("fastpool_node_replication_delay_seconds", "gauge", "Seconds since the last replayed transaction on a standby, from the last check.");
        foreach (var (db, node) in nodes)
        {
            if (node.LastCheck?.ReplayDelaySeconds is { } seconds)
            {
                w.Sample("fastpool_node_replication_delay_seconds", seconds, NodeLabels(db, node));
            }
        }
    }

    /// <summary>Every node of every database entry (the "*" entry's included), as SHOW POOL_NODES lists them.</summary>
    internal static List<(string Database, Node Node)> NodeRows(ProxyRuntime runtime)
    {
        var config = runtime.Config;
        var entries = config.Databases.AsEnumerable();
        if (config.FallbackDatabase is { } fallback)
        {
            entries = entries.Append(fallback);
        }

        return [.. entries.SelectMany(e => runtime.GetTopology(e).Nodes.Select(n => (e.Name, n)))];
    }

    internal static string RoleName(NodeRole role) => role switch
    {
        NodeRole.Primary => "primary",
        NodeRole.Standby => "standby",
        _ => "unknown",
    };

    private static (string, string)[] NodeLabels(string database, Node node) =>
    [
        ("database", database), ("node", node.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ("host", node.Endpoint.Host), ("port", node.Endpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)),
    ];
}
