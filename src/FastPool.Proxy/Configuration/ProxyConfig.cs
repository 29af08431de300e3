namespace FastPool.Proxy.Configuration;

/// <summary>
/// One immutable snapshot of the whole configuration: pgbouncer.ini's [pgbouncer], [databases] and [users]
/// sections, the auth_file, and FastPool's own [fastpool] section. Runtime state (pools, node health,
/// counters) never lives here; a reload builds a new snapshot and swaps it in atomically.
/// Defaults are PgBouncer's, so an existing pgbouncer.ini means the same thing to FastPool.
/// </summary>
public sealed record ProxyConfig
{
    /// <summary>The file the snapshot was read from (null for the built-in sandbox configuration).</summary>
    public string? SourceFile { get; init; }

    // ---- listening -------------------------------------------------------------------------------
    /// <summary>listen_addr: comma-separated addresses, "*" for all; empty means no TCP listener.</summary>
    public IReadOnlyList<string> ListenAddresses { get; init; } = [];
    public int ListenPort { get; init; } = 6432;
    /// <summary>unix_socket_dir: empty disables the unix socket (PgBouncer's default is /tmp).</summary>
    public string UnixSocketDir { get; init; } = "/tmp";
    public int UnixSocketMode { get; init; } = Convert.ToInt32("777", 8);

    // ---- authentication --------------------------------------------------------------------------
    public AuthType AuthType { get; init; } = AuthType.Md5;
    public string? AuthFile { get; init; }
    public string? AuthHbaFile { get; init; }
    /// <summary>The rules of auth_hba_file, read when auth_type = hba (null otherwise).</summary>
    public Hba.HbaRules? HbaRules { get; init; }
    public string? AuthUser { get; init; }
    /// <summary>
    /// auth_query: run as auth_user for a user not in the auth_file; $1 is the user name, the answer (name, secret). The
    /// default is PgBouncer 1.18's, which gives no secret for an expired password or a role that cannot log in.
    /// </summary>
    public string AuthQuery { get; init; } = "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin";
    /// <summary>auth_dbname: the database auth_query runs in (default: the database the client asked for).</summary>
    public string? AuthDbName { get; init; }
    /// <summary>Users and secrets from auth_file (userlist.txt): name -> secret (plain, md5..., SCRAM-SHA-256$...).</summary>
    public IReadOnlyDictionary<string, string> AuthFileUsers { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
    public IReadOnlyList<string> AdminUsers { get; init; } = [];
    public IReadOnlyList<string> StatsUsers { get; init; } = [];

    // ---- TLS ----------------------------------------------------------------------------------------
    /// <summary>client_tls_*: TLS towards clients (FastPool is the TLS server).</summary>
    public TlsSettings ClientTls { get; init; } = new();
    /// <summary>server_tls_*: TLS towards PostgreSQL (FastPool is the TLS client).</summary>
    public TlsSettings ServerTls { get; init; } = new();

    // ---- pooling ---------------------------------------------------------------------------------
    public PoolMode PoolMode { get; init; } = PoolMode.Session;
    public int MaxClientConn { get; init; } = 100;
    public int DefaultPoolSize { get; init; } = 20;
    public int MinPoolSize { get; init; }
    public int ReservePoolSize { get; init; }
    public TimeSpan ReservePoolTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>0 = unlimited.</summary>
    public int MaxDbConnections { get; init; }
    /// <summary>0 = unlimited.</summary>
    public int MaxUserConnections { get; init; }
    public string ServerResetQuery { get; init; } = "DISCARD ALL";
    public bool ServerResetQueryAlways { get; init; }
    public string ServerCheckQuery { get; init; } = "select 1";
    /// <summary>A server idle for longer than this is checked with server_check_query before reuse.</summary>
    public TimeSpan ServerCheckDelay { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan ServerLifetime { get; init; } = TimeSpan.FromSeconds(3600);
    public TimeSpan ServerIdleTimeout { get; init; } = TimeSpan.FromSeconds(600);
    public TimeSpan ServerConnectTimeout { get; init; } = TimeSpan.FromSeconds(15);
    public TimeSpan ServerLoginRetry { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>0 = wait forever.</summary>
    public TimeSpan QueryWaitTimeout { get; init; } = TimeSpan.FromSeconds(120);
    public TimeSpan QueryTimeout { get; init; } = TimeSpan.Zero;
    public TimeSpan ClientLoginTimeout { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan ClientIdleTimeout { get; init; } = TimeSpan.Zero;
    public TimeSpan IdleTransactionTimeout { get; init; } = TimeSpan.Zero;
    /// <summary>Largest message a client may send, in bytes (header included).</summary>
    public int MaxPacketSize { get; init; } = int.MaxValue;
    public int PktBuf { get; init; } = 4096;
    public IReadOnlyList<string> IgnoreStartupParameters { get; init; } = [];
    /// <summary>
    /// Transaction/statement pooling: protocol-level named prepared statements kept by FastPool, at most this many
    /// per server connection (least recently used closed first); 0 leaves them to the server, which pins the client
    /// (pin_prepare). On by default, unlike PgBouncer before 1.24: a pinned prepared-statement client holds a
    /// server for its whole session, so pgbench -M prepared with more clients than servers would stall.
    /// </summary>
    public int MaxPreparedStatements { get; init; } = DefaultMaxPreparedStatements;

    /// <summary>max_prepared_statements' default, also the cap where FastPool keeps named statements regardless (session pooling over several nodes).</summary>
    public const int DefaultMaxPreparedStatements = 200;
    public bool ApplicationNameAddHost { get; init; }

    // ---- logging and process ---------------------------------------------------------------------
    public string? LogFile { get; init; }
    public string? PidFile { get; init; }
    public bool LogConnections { get; init; } = true;
    public bool LogDisconnections { get; init; } = true;
    public bool LogPoolerErrors { get; init; } = true;
    public bool LogStats { get; init; } = true;
    public TimeSpan StatsPeriod { get; init; } = TimeSpan.FromSeconds(60);
    public int Verbose { get; init; }
    public TimeSpan ShutdownWaitTimeout { get; init; } = TimeSpan.Zero;

    /// <summary>How long SUSPEND waits for the sends under way to finish; connections still sending then are dropped (PgBouncer's default).</summary>
    public TimeSpan SuspendTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>so_reuseport: listen with SO_REUSEPORT, so a second FastPool can take over the port (rolling restart).</summary>
    public bool SoReuseport { get; init; }

    // ---- databases and users ---------------------------------------------------------------------
    /// <summary>[databases] entries except "*", in file order.</summary>
    public IReadOnlyList<DatabaseConfig> Databases { get; init; } = [];
    /// <summary>The "*" entry: used for any database name not listed (its DbName is null: the client's name is used).</summary>
    public DatabaseConfig? FallbackDatabase { get; init; }
    public IReadOnlyDictionary<string, UserConfig> Users { get; init; } = new Dictionary<string, UserConfig>(StringComparer.Ordinal);

    // ---- FastPool's own section ([fastpool]) ----------------------------------------------------
    public FastPoolSettings FastPool { get; init; } = new();

    /// <summary>The entry for a database name the client asked for, or the "*" fallback, or null.</summary>
    public DatabaseConfig? FindDatabase(string name)
    {
        foreach (var db in Databases)
        {
            if (string.Equals(db.Name, name, StringComparison.Ordinal))
            {
                return db;
            }
        }

        return FallbackDatabase;
    }
}

public enum PoolMode
{
    Session,
    Transaction,
    Statement,
}

/// <summary>
/// Session-level state that cannot move between server connections, so a client that creates it keeps its
/// server (is pinned) in transaction and statement pooling until DISCARD ALL or disconnect.
/// </summary>
[Flags]
public enum PinReasons
{
    None = 0,
    /// <summary>LISTEN: notifications are delivered to the session that listens (until UNLISTEN *).</summary>
    Listen = 1,
    /// <summary>pg_advisory_lock and friends: session-level locks are held by the backend until unlocked.</summary>
    AdvisoryLocks = 2,
    /// <summary>CREATE TEMP ...: temporary objects live in the backend's own schema.</summary>
    TempTables = 4,
    /// <summary>SQL PREPARE and named protocol-level prepared statements.</summary>
    Prepare = 8,
    /// <summary>DECLARE ... WITH HOLD: the cursor outlives its transaction.</summary>
    HoldCursors = 16,
    /// <summary>SET SESSION AUTHORIZATION: changes who the backend acts as.</summary>
    SessionAuthorization = 32,
    All = Listen | AdvisoryLocks | TempTables | Prepare | HoldCursors | SessionAuthorization,
    /// <summary>Session state FastPool cannot track (SET forms it does not parse); pins regardless of settings.</summary>
    Untracked = 64,
}

/// <summary>The [fastpool] setting name of each pin reason.</summary>
public static class PinReasonsText
{
    public static PinReasons FromSettingName(string key) => key switch
    {
        "pin_listen" => PinReasons.Listen,
        "pin_advisory_locks" => PinReasons.AdvisoryLocks,
        "pin_temp_tables" => PinReasons.TempTables,
        "pin_prepare" => PinReasons.Prepare,
        "pin_hold_cursors" => PinReasons.HoldCursors,
        "pin_session_authorization" => PinReasons.SessionAuthorization,
        _ => PinReasons.None,
    };
}

public enum AuthType
{
    Trust,
    Any,
    Plain,
    Md5,
    ScramSha256,
    Cert,
    Hba,
}

/// <summary>One node (PostgreSQL server) a database entry points at.</summary>
public sealed record NodeEndpoint(string Host, int Port);

/// <summary>One [databases] entry: libpq-style key=value connect string plus PgBouncer's pool keys.</summary>
public sealed record DatabaseConfig
{
    /// <summary>The name clients connect to ("*" for the fallback entry).</summary>
    public required string Name { get; init; }
    /// <summary>host= (comma list) and port= (comma list, or one port for all); a host starting with '/' is a unix socket dir.</summary>
    public IReadOnlyList<NodeEndpoint> Nodes { get; init; } = [new NodeEndpoint("127.0.0.1", 5432)];
    /// <summary>dbname=: the server-side database; null means the same as the client's database name.</summary>
    public string? DbName { get; init; }
    /// <summary>user=: force this server login user; null means the client's user.</summary>
    public string? User { get; init; }
    public string? Password { get; init; }
    public string? AuthUser { get; init; }
    /// <summary>auth_query= / auth_dbname= for this entry; null: the [pgbouncer] setting.</summary>
    public string? AuthQuery { get; init; }
    public string? AuthDbName { get; init; }
    public PoolMode? PoolMode { get; init; }
    public int? PoolSize { get; init; }
    public int? MinPoolSize { get; init; }
    public int? ReservePoolSize { get; init; }
    public int? MaxDbConnections { get; init; }
    public string? ConnectQuery { get; init; }
    public string? ClientEncoding { get; init; }
    public string? DateStyle { get; init; }
    public string? TimeZone { get; init; }
    public string? ApplicationName { get; init; }
    /// <summary>Where in the config the entry came from, for messages: "file:line".</summary>
    public string? Origin { get; init; }
}

/// <summary>One [users] entry.</summary>
public sealed record UserConfig
{
    public required string Name { get; init; }
    public PoolMode? PoolMode { get; init; }
    public int? PoolSize { get; init; }
    public int? MaxUserConnections { get; init; }
}

/// <summary>The [fastpool] section: FastPool's own settings that PgBouncer does not have.</summary>
public sealed record FastPoolSettings
{
    /// <summary>Number of accept loops per listener (0 = one per core).</summary>
    public int Workers { get; init; }
    /// <summary>transport = auto | epoll | sockets: what moves the bytes (auto: epoll on Linux).</summary>
    public Transport.TransportKind Transport { get; init; }
    /// <summary>sr_check_period: how often node roles and replication delay are checked (0 = never).</summary>
    public TimeSpan SrCheckPeriod { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>sr_check_user / sr_check_password / sr_check_database: the login the checks use (default: the entry's user, else postgres).</summary>
    public string? SrCheckUser { get; init; }
    public string? SrCheckPassword { get; init; }
    public string SrCheckDatabase { get; init; } = "postgres";
    /// <summary>
    /// auth_query_cache_ttl: how long an auth_query answer is reused for the same database entry and user (0 = ask
    /// every login). A failed login drops the user's entry at once, so a changed password is seen on the next try.
    /// </summary>
    public TimeSpan AuthQueryCacheTtl { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>io_threads: event-loop threads of the epoll transport (0 = half the cores, at least one).</summary>
    public int IoThreads { get; init; }
    /// <summary>
    /// idle_spin_us: how long an event loop may poll for the next event before it blocks, when its recent idle gaps
    /// were shorter than this (0 = always block). See Transport.IdleSpin.
    /// </summary>
    public int IdleSpinMicros { get; init; } = 20;
    /// <summary>
    /// pin_listen, pin_advisory_locks, pin_temp_tables, pin_prepare, pin_hold_cursors, pin_session_authorization:
    /// session-level features that keep a client on its server in transaction and statement pooling (all on by default).
    /// </summary>
    public PinReasons Pins { get; init; } = PinReasons.All;
    /// <summary>metrics_listen = HOST:PORT: where /metrics, /healthz and the status page are served (null: nowhere).</summary>
    public ListenEndpoint? MetricsListen { get; init; }
    /// <summary>Health checks and failover (health_check_*, failover*, auto_failback, ...).</summary>
    public FailoverSettings Failover { get; init; } = new();

    /// <summary>Replication-aware routing: read/write split and load balancing over a primary and standbys.</summary>
    public RoutingSettings Routing { get; init; } = new();

    /// <summary>The query result cache (memory_cache_enabled, memqcache_*).</summary>
    public CacheSettings Cache { get; init; } = new();
    /// <summary>Keys of the [fastpool] section that later features read, kept verbatim (lower-case key).</summary>
    public IReadOnlyDictionary<string, string> Raw { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
}
