using System.Globalization;
using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Admin;

/// <summary>
/// One [pgbouncer] setting as the console shows it (SHOW CONFIG) and, when <see cref="Copy"/> is set, changes
/// it live (SET): Copy takes the value from a snapshot parsed by the config loader into the running one, so SET
/// accepts exactly what the file accepts, with the same error messages.
/// </summary>
internal sealed record ConfigKey(string Name, Func<ProxyConfig, string> Get, Func<ProxyConfig, ProxyConfig, ProxyConfig>? Copy = null)
{
    public bool Changeable => Copy is not null;
}

/// <summary>
/// The settings SHOW CONFIG lists, in PgBouncer's alphabetical order (the timeouts and max_packet_size SET changes
/// count for clients that log in after it, as a reload's do); [fastpool] keys that an operator checks on a
/// running instance (the result cache's) are listed among them under their own names.
/// </summary>
internal static class ConfigKeys
{
    private static readonly ProxyConfig s_defaults = new();

    public static IReadOnlyList<ConfigKey> All { get; } =
    [
        new("admin_users", c => List(c.AdminUsers), static (c, v) => c with { AdminUsers = v.AdminUsers }),
        new("application_name_add_host", c => Bool(c.ApplicationNameAddHost), static (c, v) => c with { ApplicationNameAddHost = v.ApplicationNameAddHost }),
        new("auth_file", c => c.AuthFile ?? string.Empty),
        new("auth_query", c => c.AuthQuery),
        new("auth_type", c => AuthTypeName(c.AuthType)),
        new("auth_user", c => c.AuthUser ?? string.Empty),
        new("client_idle_timeout", c => Time(c.ClientIdleTimeout), static (c, v) => c with { ClientIdleTimeout = v.ClientIdleTimeout }),
        new("client_login_timeout", c => Time(c.ClientLoginTimeout), static (c, v) => c with { ClientLoginTimeout = v.ClientLoginTimeout }),
        new("default_pool_size", c => Int(c.DefaultPoolSize), static (c, v) => c with { DefaultPoolSize = v.DefaultPoolSize }),
        new("idle_transaction_timeout", c => Time(c.IdleTransactionTimeout), static (c, v) => c with { IdleTransactionTimeout = v.IdleTransactionTimeout }),
        new("ignore_startup_parameters", c => List(c.IgnoreStartupParameters), static (c, v) => c with { IgnoreStartupParameters = v.IgnoreStartupParameters }),
        new("listen_addr", c => List(c.ListenAddresses)),
        new("listen_port", c => Int(c.ListenPort)),
        new("log_connections", c => Bool(c.LogConnections), static (c, v) => c with { LogConnections = v.LogConnections }),
        new("log_disconnections", c => Bool(c.LogDisconnections), static (c, v) => c with { LogDisconnections = v.LogDisconnections }),
        new("log_pooler_errors", c => Bool(c.LogPoolerErrors), static (c, v) => c with { LogPoolerErrors = v.LogPoolerErrors }),
        new("log_stats", c => Bool(c.LogStats), static (c, v) => c with { LogStats = v.LogStats }),
        new("logfile", c => c.LogFile ?? string.Empty),
        new("max_client_conn", c => Int(c.MaxClientConn), static (c, v) => c with { MaxClientConn = v.MaxClientConn }),
        new("max_db_connections", c => Int(c.MaxDbConnections), static (c, v) => c with { MaxDbConnections = v.MaxDbConnections }),
        new("max_packet_size", c => Int(c.MaxPacketSize), static (c, v) => c with { MaxPacketSize = v.MaxPacketSize }),
        new("max_prepared_statements", c => Int(c.MaxPreparedStatements), static (c, v) => c with { MaxPreparedStatements = v.MaxPreparedStatements }),
        new("max_user_connections", c => Int(c.MaxUserConnections), static (c, v) => c with { MaxUserConnections = v.MaxUserConnections }),
        new("memory_cache_enabled", c => Bool(c.FastPool.Cache.Enabled)),
        new("memqcache_expire", c => Time(c.FastPool.Cache.Limits.Expire)),
        new("memqcache_maxcache", c => Int(c.FastPool.Cache.Limits.MaxEntrySize)),
        new("memqcache_method", c => c.FastPool.Cache.Method.ToString().ToLowerInvariant()),
        new("memqcache_redis", c => WithoutPassword(c.FastPool.Cache.Redis)),
        new("memqcache_total_size", c => c.FastPool.Cache.Limits.TotalSize.ToString(CultureInfo.InvariantCulture)),
        new("min_pool_size", c => Int(c.MinPoolSize), static (c, v) => c with { MinPoolSize = v.MinPoolSize }),
        new("pidfile", c => c.PidFile ?? string.Empty),
        new("pkt_buf", c => Int(c.PktBuf)),
        new("pool_mode", c => c.PoolMode.ToString().ToLowerInvariant()),
        new("query_timeout", c => Time(c.QueryTimeout), static (c, v) => c with { QueryTimeout = v.QueryTimeout }),
        new("query_wait_timeout", c => Time(c.QueryWaitTimeout), static (c, v) => c with { QueryWaitTimeout = v.QueryWaitTimeout }),
        new("reserve_pool_size", c => Int(c.ReservePoolSize), static (c, v) => c with { ReservePoolSize = v.ReservePoolSize }),
        new("reserve_pool_timeout", c => Time(c.ReservePoolTimeout), static (c, v) => c with { ReservePoolTimeout = v.ReservePoolTimeout }),
        new("server_check_delay", c => Time(c.ServerCheckDelay), static (c, v) => c with { ServerCheckDelay = v.ServerCheckDelay }),
        new("server_check_query", c => c.ServerCheckQuery, static (c, v) => c with { ServerCheckQuery = v.ServerCheckQuery }),
        new("server_connect_timeout", c => Time(c.ServerConnectTimeout), static (c, v) => c with { ServerConnectTimeout = v.ServerConnectTimeout }),
        new("server_idle_timeout", c => Time(c.ServerIdleTimeout), static (c, v) => c with { ServerIdleTimeout = v.ServerIdleTimeout }),
        new("server_lifetime", c => Time(c.ServerLifetime), static (c, v) => c with { ServerLifetime = v.ServerLifetime }),
        new("server_login_retry", c => Time(c.ServerLoginRetry), static (c, v) => c with { ServerLoginRetry = v.ServerLoginRetry }),
        new("server_reset_query", c => c.ServerResetQuery, static (c, v) => c with { ServerResetQuery = v.ServerResetQuery }),
        new("server_reset_query_always", c => Bool(c.ServerResetQueryAlways), static (c, v) => c with { ServerResetQueryAlways = v.ServerResetQueryAlways }),
        new("shutdown_wait_timeout", c => Time(c.ShutdownWaitTimeout), static (c, v) => c with { ShutdownWaitTimeout = v.ShutdownWaitTimeout }),
        new("so_reuseport", c => Bool(c.SoReuseport)),
        new("suspend_timeout", c => Time(c.SuspendTimeout), static (c, v) => c with { SuspendTimeout = v.SuspendTimeout }),
        new("stats_period", c => Time(c.StatsPeriod), static (c, v) => c with { StatsPeriod = v.StatsPeriod }),
        new("stats_users", c => List(c.StatsUsers), static (c, v) => c with { StatsUsers = v.StatsUsers }),
        new("unix_socket_dir", c => c.UnixSocketDir),
        new("unix_socket_mode", c => "0" + Convert.ToString(c.UnixSocketMode, 8)),
        new("verbose", c => Int(c.Verbose)),
    ];

    public static ConfigKey? Find(string name)
    {
        foreach (var key in All)
        {
            if (string.Equals(key.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return key;
            }
        }

        return null;
    }

    public static string Default(ConfigKey key) => key.Get(s_defaults);

    /// <summary>memqcache_redis may carry StackExchange.Redis options: a password is not shown.</summary>
    private static string WithoutPassword(string? redis) => redis is null ? string.Empty
        : string.Join(',', redis.Split(',').Select(o => o.Trim().StartsWith("password=", StringComparison.OrdinalIgnoreCase) ? "password=***" : o));

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Bool(bool value) => value ? "1" : "0";

    private static string List(IReadOnlyList<string> values) => string.Join(',', values);

    /// <summary>Seconds, as PgBouncer's file takes them; fractions only when there are any.</summary>
    private static string Time(TimeSpan value) => value.TotalSeconds.ToString("0.######", CultureInfo.InvariantCulture);

    private static string AuthTypeName(AuthType type) => type switch
    {
        AuthType.ScramSha256 => "scram-sha-256",
        _ => type.ToString().ToLowerInvariant(),
    };
}
