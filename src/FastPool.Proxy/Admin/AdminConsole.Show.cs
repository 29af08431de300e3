using System.Net;
using System.Net.Sockets;
using FastPool.Protocol;
using FastPool.Proxy.Connections;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Admin;

/// <summary>The SHOW commands: column names and types as PgBouncer 1.18 sends them.</summary>
internal sealed partial class AdminConsole
{
    private const string Help = """
        SHOW HELP|VERSION|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|SOCKETS|ACTIVE_SOCKETS|USERS|STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS|LISTS|STATE|MEM|POOL_NODES|POOL_CACHE
        SET key = value
        RELOAD
        PAUSE [db]
        RESUME [db]
        SUSPEND
        WAIT_CLOSE [db]
        DISABLE db
        ENABLE db
        RECONNECT [db]
        KILL db
        KILL_CLIENT id
        ATTACH|DETACH|PROMOTE|RECOVER NODE n [db]
        PURGE CACHE [table]
        SHUTDOWN [WAIT_FOR_CLIENTS|WAIT_FOR_SERVERS]
        """;

    private static readonly Column[] s_statsTotals =
    [
        new("database", ColumnType.Text), new("xact_count", ColumnType.Numeric), new("query_count", ColumnType.Numeric),
        new("bytes_received", ColumnType.Numeric), new("bytes_sent", ColumnType.Numeric), new("xact_time", ColumnType.Numeric),
        new("query_time", ColumnType.Numeric), new("wait_time", ColumnType.Numeric),
    ];

    private void Show(AdminCommand command)
    {
        if (command.Args.Count != 1)
        {
            throw new AdminException(SqlState.SyntaxError, "syntax: SHOW item", "SHOW HELP lists the items.");
        }

        switch (command.Args[0].ToUpperInvariant())
        {
            case "HELP":
                _out.ErrorResponse("NOTICE", "00000", "Console usage", Help, notice: true);
                _result.Complete("SHOW");
                break;
            case "VERSION":
                _result.Describe([new("version", ColumnType.Text)]);
                _result.Row().Add($"PgBouncer {CompatibleVersion} compatible: FastPool {ProductVersion}");
                _result.Complete("SHOW");
                break;
            case "CONFIG":
                ShowConfig();
                break;
            case "DATABASES":
                ShowDatabases();
                break;
            case "POOLS":
                ShowPools();
                break;
            case "CLIENTS":
                ShowClients();
                break;
            case "SERVERS":
                ShowServers();
                break;
            case "SOCKETS":
                ShowSockets(activeOnly: false);
                break;
            case "ACTIVE_SOCKETS":
                ShowSockets(activeOnly: true);
                break;
            case "USERS":
                ShowUsers();
                break;
            case "STATS":
                ShowStats(totals: true, averages: true, prefixed: true);
                break;
            case "STATS_TOTALS":
                ShowStats(totals: true, averages: false, prefixed: false);
                break;
            case "STATS_AVERAGES":
                ShowStats(totals: false, averages: true, prefixed: false);
                break;
            case "TOTALS":
                ShowTotals();
                break;
            case "LISTS":
                ShowLists();
                break;
            case "STATE":
                ShowState();
                break;
            case "POOL_NODES":
                ShowPoolNodes();
                break;
            case "MEM":
                ShowMem();
                break;
            case "POOL_CACHE":
                ShowPoolCache();
                break;
            case "DNS_HOSTS":
                // FastPool keeps no DNS cache of its own (each new server connection asks the resolver), so, as in a
                // PgBouncer whose cache is empty, there are no rows; monitoring that polls these still gets its columns.
                _result.Describe([new("hostname", ColumnType.Text), new("ttl", ColumnType.Numeric), new("addrs", ColumnType.Text)]);
                _result.Complete("SHOW");
                break;
            case "DNS_ZONES":
                _result.Describe([new("zonename", ColumnType.Text), new("serial", ColumnType.Numeric), new("count", ColumnType.Int4)]);
                _result.Complete("SHOW");
                break;
            default:
                throw new AdminException(SqlState.SyntaxError, $"unknown SHOW item \"{command.Args[0]}\"", "SHOW HELP lists the items.");
        }
    }

    /// <summary>SHOW POOL_CACHE: Pgpool-II's name; one row of the result cache's counters (zeros while it is off).</summary>
    private void ShowPoolCache()
    {
        var cache = _runtime.Cache;
        var stats = cache?.Stats ?? default;
        long lookups = stats.Hits + stats.Misses;
        _result.Describe(
        [
            new("enabled", ColumnType.Int4), new("method", ColumnType.Text), new("hits", ColumnType.Numeric), new("misses", ColumnType.Numeric),
            new("hit_ratio", ColumnType.Text), new("entries", ColumnType.Numeric), new("bytes", ColumnType.Numeric),
            new("total_size", ColumnType.Numeric), new("evictions", ColumnType.Numeric), new("invalidations", ColumnType.Numeric),
            new("stores", ColumnType.Numeric), new("declined", ColumnType.Numeric),
        ]);
        var settings = _runtime.Config.FastPool.Cache;
        _result.Row()
            .Add(cache is not null)
            .Add(settings.Method.ToString().ToLowerInvariant())
            .Add(stats.Hits)
            .Add(stats.Misses)
            .Add(lookups == 0 ? "0.00" : (stats.Hits / (double)lookups).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture))
            .Add(stats.Entries)
            .Add(stats.Bytes)
            .Add(settings.Limits.TotalSize)
            .Add(stats.Evictions)
            .Add(stats.Invalidations)
            .Add(stats.Stores)
            .Add(stats.Declined);
        _result.Complete("SHOW");
    }

    private void ShowConfig()
    {
        var config = _runtime.Config;
        _result.Describe([new("key", ColumnType.Text), new("value", ColumnType.Text), new("default", ColumnType.Text), new("changeable", ColumnType.Text)]);
        foreach (var key in ConfigKeys.All)
        {
            _result.Row().Add(key.Name).Add(key.Get(config)).Add(ConfigKeys.Default(key)).Add(key.Changeable ? "yes" : "no");
        }

        _result.Complete("SHOW");
    }

    private void ShowDatabases()
    {
        var config = _runtime.Config;
        var control = _runtime.Control;
        var pools = _runtime.Pools.AllPools.ToList();
        _result.Describe(
        [
            new("name", ColumnType.Text), new("host", ColumnType.Text), new("port", ColumnType.Int4), new("database", ColumnType.Text),
            new("force_user", ColumnType.Text), new("pool_size", ColumnType.Int4), new("min_pool_size", ColumnType.Int4),
            new("reserve_pool", ColumnType.Int4), new("pool_mode", ColumnType.Text), new("max_connections", ColumnType.Int4),
            new("current_connections", ColumnType.Int4), new("paused", ColumnType.Int4), new("disabled", ColumnType.Int4),
        ]);

        // Configured entries, then the names the "*" entry serves right now (PgBouncer's automatic databases).
        var rows = config.Databases.Select(d => (Name: d.Name, Entry: d)).ToList();
        if (config.FallbackDatabase is { } fallback)
        {
            foreach (var name in pools.Where(p => p.Key.Database.Name == "*").Select(p => p.Key.ClientDatabase).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                if (config.Databases.All(d => d.Name != name))
                {
                    rows.Add((name, fallback));
                }
            }
        }

        foreach (var (name, entry) in rows)
        {
            var node = entry.Nodes[0];
            _result.Row()
                .Add(name).Add(node.Host).Add(node.Port).Add(entry.DbName ?? name).Add(entry.User)
                .Add(entry.PoolSize ?? config.DefaultPoolSize).Add(entry.MinPoolSize ?? config.MinPoolSize)
                .Add(entry.ReservePoolSize ?? config.ReservePoolSize).Add(entry.PoolMode?.ToString().ToLowerInvariant())
                .Add(entry.MaxDbConnections ?? config.MaxDbConnections)
                .Add(pools.Where(p => PoolName(p) == name).Sum(p => p.TotalCount))
                .Add(control.IsPaused(name)).Add(control.IsDisabled(name));
        }

        // The console itself, as PgBouncer lists it.
        _result.Row().Add("pgbouncer").Add((string?)null).Add(config.ListenPort).Add("pgbouncer").Add("pgbouncer").Add(2L).Add(0L).Add(0L)
            .Add("statement").Add(0L).Add(0L).Add(false).Add(false);
        _result.Complete("SHOW");
    }

    private void ShowPools()
    {
        var clients = LoggedInClients();
        _result.Describe(
        [
            new("database", ColumnType.Text), new("user", ColumnType.Text), new("cl_active", ColumnType.Int4), new("cl_waiting", ColumnType.Int4),
            new("cl_active_cancel_req", ColumnType.Int4), new("cl_waiting_cancel_req", ColumnType.Int4), new("sv_active", ColumnType.Int4),
            new("sv_active_cancel", ColumnType.Int4), new("sv_being_canceled", ColumnType.Int4), new("sv_idle", ColumnType.Int4),
            new("sv_used", ColumnType.Int4), new("sv_tested", ColumnType.Int4), new("sv_login", ColumnType.Int4), new("maxwait", ColumnType.Int4),
            new("maxwait_us", ColumnType.Int4), new("pool_mode", ColumnType.Text),
        ]);

        foreach (var pool in Metrics.PoolGauges.Collect(_runtime))
        {
            var maxWait = pool.MaxWait;
            _result.Row()
                .Add(pool.Database).Add(pool.User).Add(pool.ClientsActive).Add(pool.ClientsWaiting).Add(0L).Add(0L)
                .Add(pool.ServersActive).Add(0L).Add(0L).Add(pool.ServersIdle).Add(pool.ServersUsed).Add(pool.ServersTested).Add(pool.ServersLogin)
                .Add((long)maxWait.TotalSeconds).Add(maxWait.Microseconds + (maxWait.Milliseconds * 1000L))
                .Add(pool.Mode.ToString().ToLowerInvariant());
        }

        var consoles = clients.Where(c => c.IsConsole).GroupBy(c => c.User).OrderBy(g => g.Key, StringComparer.Ordinal);
        foreach (var console in consoles)
        {
            _result.Row().Add("pgbouncer").Add(console.Key).Add(console.Count()).Add(0L).Add(0L).Add(0L).Add(0L).Add(0L).Add(0L)
                .Add(0L).Add(0L).Add(0L).Add(0L).Add(0L).Add(0L).Add("statement");
        }

        _result.Complete("SHOW");
    }

    private static Column[] ConnectionColumns() =>
    [
        new("type", ColumnType.Text), new("user", ColumnType.Text), new("database", ColumnType.Text), new("state", ColumnType.Text),
        new("addr", ColumnType.Text), new("port", ColumnType.Int4), new("local_addr", ColumnType.Text), new("local_port", ColumnType.Int4),
        new("connect_time", ColumnType.Text), new("request_time", ColumnType.Text), new("wait", ColumnType.Int4), new("wait_us", ColumnType.Int4),
        new("close_needed", ColumnType.Int4), new("ptr", ColumnType.Text), new("link", ColumnType.Text), new("remote_pid", ColumnType.Int4),
        new("tls", ColumnType.Text), new("application_name", ColumnType.Text),

        // Not in PgBouncer 1.18, in the place later PgBouncers put them: the protocol-level prepared statements the
        // connection holds (1.21), and the number KILL_CLIENT takes.
        new("prepared_statements", ColumnType.Int4), new("id", ColumnType.Int8),
    ];

    private void ShowClients()
    {
        long now = _runtime.Time.GetTimestamp();
        _result.Describe(ConnectionColumns());
        foreach (var client in LoggedInClients())
        {
            ClientRow(client, ClientState(client), now);
        }

        _result.Complete("SHOW");
    }

    private static string ClientState(ClientContext client) =>
        !client.LoggedIn ? "login" : client.Session?.WaitingSinceTicks is > 0 ? "waiting" : "active";

    private void ClientRow(ClientContext client, string state, long now)
    {
        var session = client.Session;
        long waitingSince = session?.WaitingSinceTicks ?? 0;
        var wait = waitingSince == 0 ? TimeSpan.Zero : _runtime.Time.GetElapsedTime(waitingSince, now);
        long requested = session?.LastRequestTicks ?? 0;
        var (addr, port) = Endpoint(client.Connection.Socket, remote: true);
        var (localAddr, localPort) = Endpoint(client.Connection.Socket, remote: false);

        // Before its startup packet a client has no user or database yet: PgBouncer's placeholders then.
        string? user = client.Startup is null ? "(nouser)" : client.User;
        string? database = client.Startup is null ? "(nodb)" : client.IsConsole ? "pgbouncer" : client.DatabaseName;
        _result.Row()
            .Add("C").Add(user).Add(database).Add(state)
            .Add(addr).Add(port).Add(localAddr).Add(localPort)
            .Add(client.ConnectedAt).Add(requested == 0 ? client.ConnectedAt : WallClock(requested, now))
            .Add((long)wait.TotalSeconds).Add(wait.Microseconds + (wait.Milliseconds * 1000L)).Add(0L)
            .Add("C-" + client.Id).Add(session?.CurrentServer is { } server ? "S-" + server.Id : null).Add(0L).Add(TlsInfo(client.Connection))
            .Add(client.Startup?.GetParameter("application_name") ?? string.Empty).Add(session?.PreparedStatementCount ?? 0).Add(client.Id);
    }

    private void ShowServers()
    {
        long now = _runtime.Time.GetTimestamp();
        _result.Describe(ConnectionColumns());
        foreach (var (server, state, client) in Servers())
        {
            ServerRow(server, state, client, now);
        }

        _result.Complete("SHOW");
    }

    /// <summary>Servers held by clients ("active"), then each pool's idle ones ("used" when they need a check first).</summary>
    private IEnumerable<(ServerConnection Server, string State, ClientContext? Client)> Servers()
    {
        foreach (var client in LoggedInClients())
        {
            if (client.Session?.CurrentServer is { } server)
            {
                yield return (server, "active", client);
            }
        }

        foreach (var pool in _runtime.Pools.AllPools)
        {
            foreach (var server in pool.IdleSnapshot())
            {
                yield return (server, pool.NeedsCheckBeforeUse(server) ? "used" : "idle", null);
            }
        }
    }

    private void ServerRow(ServerConnection server, string state, ClientContext? client, long now)
    {
        var pool = server.Pool;
        var (localAddr, localPort) = Endpoint(server.Connection.Socket, remote: false);
        _result.Row()
            .Add("S").Add(pool.Key.User).Add(PoolName(pool)).Add(state)
            .Add(server.Node.Endpoint.Host).Add(server.Node.Endpoint.Port).Add(localAddr).Add(localPort)
            .Add(WallClock(server.CreatedTicks, now)).Add(WallClock(server.LastUsedTicks, now))
            .Add(0L).Add(0L).Add(server.Generation != pool.Generation || pool.Retired)
            .Add("S-" + server.Id).Add(client is null ? null : "C-" + client.Id).Add(server.BackendProcessId).Add(TlsInfo(server.Connection))
            .Add(client?.Startup?.GetParameter("application_name") ?? string.Empty).Add(server.Protocol.PreparedCount).Add(server.Id);
    }

    private void ShowUsers()
    {
        var config = _runtime.Config;
        var names = new SortedSet<string>(config.Users.Keys, StringComparer.Ordinal);
        foreach (var pool in _runtime.Pools.AllPools)
        {
            names.Add(pool.Key.ClientUser);
        }

        _result.Describe([new("name", ColumnType.Text), new("pool_mode", ColumnType.Text)]);
        foreach (var name in names)
        {
            config.Users.TryGetValue(name, out var user);
            _result.Row().Add(name).Add(user?.PoolMode?.ToString().ToLowerInvariant());
        }

        _result.Complete("SHOW");
    }

    /// <summary>
    /// SHOW STATS and its two subsets. Transaction and query times are measured per round trip (see
    /// ClientSession.Timing): a pipelined batch counts as one query.
    /// </summary>
    private void ShowStats(bool totals, bool averages, bool prefixed)
    {
        if (prefixed)
        {
            _result.Describe(
            [
                new("database", ColumnType.Text),
                new("total_xact_count", ColumnType.Numeric), new("total_query_count", ColumnType.Numeric), new("total_received", ColumnType.Numeric),
                new("total_sent", ColumnType.Numeric), new("total_xact_time", ColumnType.Numeric), new("total_query_time", ColumnType.Numeric),
                new("total_wait_time", ColumnType.Numeric),
                new("avg_xact_count", ColumnType.Numeric), new("avg_query_count", ColumnType.Numeric), new("avg_recv", ColumnType.Numeric),
                new("avg_sent", ColumnType.Numeric), new("avg_xact_time", ColumnType.Numeric), new("avg_query_time", ColumnType.Numeric),
                new("avg_wait_time", ColumnType.Numeric),
            ]);
        }
        else
        {
            _result.Describe(s_statsTotals);
        }

        foreach (var db in _runtime.Stats.Databases.OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            _result.Row().Add(db.Name);
            if (totals)
            {
                _result.Add(db.Transactions).Add(db.Queries).Add(db.BytesIn).Add(db.BytesOut).Add(db.TransactionMicroseconds).Add(db.QueryMicroseconds)
                    .Add(db.WaitMicroseconds);
            }

            if (averages)
            {
                var a = db.Averages;
                _result.Add(a.Transactions).Add(a.Queries).Add(a.BytesIn).Add(a.BytesOut).Add(a.TransactionMicroseconds).Add(a.QueryMicroseconds)
                    .Add(a.WaitMicroseconds);
            }
        }

        _result.Complete("SHOW");
    }

    /// <summary>SHOW TOTALS: SHOW STATS summed over every database, as name/value rows under PgBouncer 1.18's names.</summary>
    private void ShowTotals()
    {
        var stats = _runtime.Stats;
        var dbs = stats.Databases.ToArray();
        var avg = stats.CombinedAverages();
        _result.Describe([new("name", ColumnType.Text), new("value", ColumnType.Numeric)]);
        _result.Row().Add("total_xact_count").Add(dbs.Sum(d => d.Transactions));
        _result.Row().Add("total_query_count").Add(dbs.Sum(d => d.Queries));
        _result.Row().Add("total_client_bytes").Add(dbs.Sum(d => d.BytesIn));
        _result.Row().Add("total_server_bytes").Add(dbs.Sum(d => d.BytesOut));
        _result.Row().Add("total_xact_time").Add(dbs.Sum(d => d.TransactionMicroseconds));
        _result.Row().Add("total_query_time").Add(dbs.Sum(d => d.QueryMicroseconds));
        _result.Row().Add("total_wait_time").Add(dbs.Sum(d => d.WaitMicroseconds));
        _result.Row().Add("avg_xact_count").Add(avg.Transactions);
        _result.Row().Add("avg_query_count").Add(avg.Queries);
        _result.Row().Add("avg_client_bytes").Add(avg.BytesIn);
        _result.Row().Add("avg_server_bytes").Add(avg.BytesOut);
        _result.Row().Add("avg_xact_time").Add(avg.TransactionMicroseconds);
        _result.Row().Add("avg_query_time").Add(avg.QueryMicroseconds);
        _result.Row().Add("avg_wait_time").Add(avg.WaitMicroseconds);
        _result.Complete("SHOW");
    }

    private void ShowLists()
    {
        var config = _runtime.Config;
        var pools = _runtime.Pools.AllPools.ToList();
        var clients = _runtime.Clients.Values.ToList();
        int loggedIn = clients.Count(c => c.LoggedIn);
        var users = new HashSet<string>(config.Users.Keys, StringComparer.Ordinal);
        users.UnionWith(pools.Select(p => p.Key.ClientUser));
        int databases = config.Databases.Count + pools.Where(p => p.Key.Database.Name == "*").Select(p => p.Key.ClientDatabase).Distinct(StringComparer.Ordinal).Count();

        _result.Describe([new("list", ColumnType.Text), new("items", ColumnType.Int4)]);
        _result.Row().Add("databases").Add(databases);
        _result.Row().Add("users").Add(users.Count);
        _result.Row().Add("pools").Add(pools.Count);
        _result.Row().Add("free_clients").Add(0L);
        _result.Row().Add("used_clients").Add(loggedIn);
        _result.Row().Add("login_clients").Add(clients.Count - loggedIn);
        _result.Row().Add("free_servers").Add(0L);
        _result.Row().Add("used_servers").Add(pools.Sum(p => p.TotalCount));
        _result.Row().Add("dns_names").Add(0L);
        _result.Row().Add("dns_zones").Add(0L);
        _result.Row().Add("dns_queries").Add(0L);
        _result.Row().Add("dns_pending").Add(0L);
        _result.Complete("SHOW");
    }

    private void ShowState()
    {
        // As PgBouncer: one of the three modes; SUSPEND is not reported as paused too.
        var control = _runtime.Control;
        _result.Describe([new("key", ColumnType.Text), new("value", ColumnType.Text)]);
        _result.Row().Add("active").Add(control.AllPaused ? "no" : "yes");
        _result.Row().Add("paused").Add(control.IsPausedAll ? "yes" : "no");
        _result.Row().Add("suspended").Add(_runtime.Control.IsSuspended ? "yes" : "no");
        _result.Complete("SHOW");
    }

    /// <summary>
    /// Pgpool-II's SHOW POOL_NODES, one row per node of every database entry: roles and delay come from the
    /// node checks (sr_check_period), not from the config. Replication delay is in bytes, as Pgpool-II shows it.
    /// </summary>
    private void ShowPoolNodes()
    {
        _result.Describe([
            new("database", ColumnType.Text), new("node_id", ColumnType.Int4), new("hostname", ColumnType.Text), new("port", ColumnType.Int4),
            new("status", ColumnType.Text), new("lb_weight", ColumnType.Text), new("role", ColumnType.Text), new("select_cnt", ColumnType.Int8),
            new("load_balance_node", ColumnType.Text), new("replication_delay", ColumnType.Int8), new("replication_delay_seconds", ColumnType.Text),
            new("last_status_change", ColumnType.Text), new("last_change_reason", ColumnType.Text),
        ]);
        var config = _runtime.Config;
        var entries = config.Databases.AsEnumerable();
        if (config.FallbackDatabase is { } fallback)
        {
            entries = entries.Append(fallback);
        }

        foreach (var entry in entries)
        {
            var topology = _runtime.GetTopology(entry);
            var routing = config.FastPool.Routing;

            // As Pgpool-II: each node's weight as a share of the entry's total; load_balance_node says whether reads
            // may go there right now (a standby that is up, weighted and within the delay thresholds).
            double total = topology.Nodes.Sum(n => routing.WeightOf(n.Id));
            foreach (var node in topology.Nodes)
            {
                var check = node.LastCheck;
                string weight = (total > 0 ? routing.WeightOf(node.Id) / total : 0).ToString("0.000000", System.Globalization.CultureInfo.InvariantCulture);
                bool balanced = topology.Nodes.Length > 1 && routing.LoadBalanceMode && Pipeline.RoutingStage.MayServe(node, routing, 0);
                _result.Row().Add(entry.Name).Add(node.Id).Add(node.Endpoint.Host).Add(node.Endpoint.Port)
                    .Add(Topology.FailoverCoordinator.StatusText(node.Status)).Add(weight)
                    .Add(node.Role switch { Topology.NodeRole.Primary => "primary", Topology.NodeRole.Standby => "standby", _ => "unknown" })
                    .Add(node.SelectCount).Add(balanced ? "true" : "false").Add(check?.DelayBytes ?? 0L)
                    .Add(check?.ReplayDelaySeconds?.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture))
                    .Add(node.LastStatusChange).Add(node.LastChangeReason);
            }
        }

        _result.Complete("SHOW");
    }

    /// <summary>FastPool has no slab caches like PgBouncer's; the managed heap is the memory worth showing.</summary>
    private void ShowMem()
    {
        var gc = GC.GetGCMemoryInfo();
        _result.Describe([new("name", ColumnType.Text), new("size", ColumnType.Int8), new("used", ColumnType.Int8), new("free", ColumnType.Int8), new("memtotal", ColumnType.Int8)]);
        long used = GC.GetTotalMemory(forceFullCollection: false);
        _result.Row().Add("managed_heap").Add(1L).Add(used).Add(Math.Max(0, gc.HeapSizeBytes - used)).Add(gc.HeapSizeBytes);
        _result.Complete("SHOW");
    }

    /// <summary>PgBouncer's tls column: protocol and cipher, empty without TLS.</summary>
    private static string TlsInfo(Transport.Connection connection)
    {
        try
        {
            return connection is Transport.TlsConnection tls ? tls.Description : string.Empty;
        }
        catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException)
        {
            // The connection closed while the list was being written.
            return string.Empty;
        }
    }

    private List<ClientContext> LoggedInClients() => [.. _runtime.Clients.Values.Where(c => c.LoggedIn).OrderBy(c => c.Id)];

    /// <summary>The database name clients use for a pool (under "*" too, the name they asked for).</summary>
    private static string PoolName(ServerPool pool) => pool.Key.ClientDatabase;

    private DateTimeOffset WallClock(long ticks, long now) => _runtime.Time.GetUtcNow() - _runtime.Time.GetElapsedTime(ticks, now);

    private static (string? Address, long Port) Endpoint(Socket socket, bool remote)
    {
        try
        {
            return (remote ? socket.RemoteEndPoint : socket.LocalEndPoint) switch
            {
                IPEndPoint ip => (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4().ToString() : ip.Address.ToString(), ip.Port),
                UnixDomainSocketEndPoint => ("unix", 0),
                _ => (null, 0),
            };
        }
        catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
        {
            // The connection closed while the list was being written.
            return (null, 0);
        }
    }
}
