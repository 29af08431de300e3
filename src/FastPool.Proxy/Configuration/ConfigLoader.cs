using System.Globalization;
using FastPool.Proxy.Configuration.Hba;

namespace FastPool.Proxy.Configuration;

/// <summary>A problem found while loading the configuration, pointing at the file and line that caused it.</summary>
/// <param name="File">The file as named to the loader (included files by full path).</param>
/// <param name="Line">1-based line; 0 when the problem is the file as a whole (e.g. it does not exist).</param>
/// <param name="Key">The setting, database or user the problem is about, when there is one.</param>
/// <param name="Message">Self-contained text naming the key and, for a bad value, the accepted values.</param>
public sealed record ConfigDiagnostic(string File, int Line, string? Key, string Message)
{
    public override string ToString() => $"{File}:{Line}: {Message}";
}

/// <summary>
/// The outcome of loading a configuration. <see cref="Config"/> is null exactly when <see cref="Errors"/>
/// is non-empty: a half-understood configuration is never handed out, so a reload keeps the old snapshot.
/// </summary>
public sealed record ConfigLoadResult(ProxyConfig? Config, IReadOnlyList<ConfigDiagnostic> Warnings, IReadOnlyList<ConfigDiagnostic> Errors)
{
    /// <summary>
    /// Debug-level notes: valid PgBouncer settings FastPool accepts but does not implement yet. They are not
    /// warnings because an unchanged pgbouncer.ini should start cleanly.
    /// </summary>
    public IReadOnlyList<ConfigDiagnostic> Notes { get; init; } = [];

    public bool Success => Errors.Count == 0;
}

/// <summary>
/// Reads an existing pgbouncer.ini (plus its %include files and auth_file) into a <see cref="ProxyConfig"/>,
/// with PgBouncer's meaning for every value it understands.
/// </summary>
public static partial class ConfigLoader
{
    /// <summary>Loads <paramref name="path"/>; relative %include and auth_file paths resolve against its directory.</summary>
    public static ConfigLoadResult Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var ini = IniFile.Load(path);
        return new Builder(path).Build(ini);
    }

    /// <summary>
    /// Loads configuration text as if it were the file <paramref name="fileName"/> in
    /// <paramref name="baseDirectory"/> (which is where relative %include and auth_file paths resolve).
    /// </summary>
    public static ConfigLoadResult LoadFromText(string text, string fileName, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(baseDirectory);
        var ini = IniFile.Parse(text, fileName, baseDirectory);
        return new Builder(fileName).Build(ini);
    }

    private sealed partial class Builder(string sourceFile)
    {
        private const string SectionPgBouncer = "pgbouncer";
        private const string SectionDatabases = "databases";
        private const string SectionUsers = "users";
        private const string SectionPeers = "peers";
        private const string SectionFastPool = "fastpool";

        private const string BoolAccepted = "1, 0, on, off, true, false, yes, no";
        private const string TimeAccepted = "a number of seconds (e.g. 30 or 0.5), optionally with a unit: us, ms, s, min, h, d";
        private const string PoolModeAccepted = "session, transaction, statement";
        private const string AuthTypeAccepted = "trust, any, plain, md5, scram-sha-256, cert, hba";

        private readonly List<ConfigDiagnostic> _warnings = [];
        private readonly List<ConfigDiagnostic> _errors = [];
        private readonly List<ConfigDiagnostic> _notes = [];
        private readonly List<DatabaseDraft> _databases = [];
        private readonly Dictionary<string, UserConfig> _users = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _fastPoolRaw = new(StringComparer.Ordinal);
        private readonly Dictionary<string, IniEntry> _routingEntries = new(StringComparer.Ordinal);
        private readonly HashSet<string> _warnedSections = new(StringComparer.OrdinalIgnoreCase);
        private ProxyConfig _config = new() { SourceFile = sourceFile };
        private DatabaseDraft? _fallback;
        private IniEntry? _authFileEntry;
        private IniEntry? _authTypeEntry;
        private IniEntry? _authHbaFileEntry;
        private IniEntry? _clientTlsEntry;
        private IniEntry? _serverTlsEntry;
        private int _workers;
        private int _ioThreads;
        private FastPoolSettings _fastPool = new();
        private Transport.TransportKind _transport;
        private PinReasons _pins = PinReasons.All;

        public ConfigLoadResult Build(IniFile ini)
        {
            _errors.AddRange(ini.Errors);
            WarnAboutRepeatedPgBouncerSections(ini);
            foreach (var entry in ini.Entries)
            {
                Apply(entry);
            }

            WarnAboutUnknownSections(ini);
            var databases = new List<DatabaseConfig>(_databases.Count);
            foreach (var draft in _databases)
            {
                databases.Add(Finish(draft));
            }

            _config = _config with
            {
                Databases = databases,
                FallbackDatabase = _fallback is null ? null : Finish(_fallback),
                Users = _users,
                FastPool = _fastPool with { Workers = _workers, Transport = _transport, IoThreads = _ioThreads, Pins = _pins, Raw = _fastPoolRaw },
            };
            CheckRoutingAgainstNodes(_config.Databases, _config.FallbackDatabase);
            LoadAuthFile();
            LoadHbaFile();
            CheckTls();
            CheckAnyUsers();

            return new ConfigLoadResult(_errors.Count == 0 ? _config : null, _warnings, _errors) { Notes = _notes };
        }

        private void Apply(IniEntry entry)
        {
            if (entry.Section is null)
            {
                Error(entry, entry.Key, $"setting \"{entry.Key}\" appears before any [section] header");
                return;
            }

            switch (entry.Section.ToLowerInvariant())
            {
                case SectionPgBouncer:
                    ApplyPgBouncer(entry);
                    break;
                case SectionDatabases:
                    ApplyDatabase(entry);
                    break;
                case SectionUsers:
                    ApplyUser(entry);
                    break;
                case SectionFastPool:
                    ApplyFastPool(entry);
                    break;
                case SectionPeers:
                    Note(entry, entry.Key, $"[peers] entry \"{entry.Key}\" ignored: FastPool does not support PgBouncer peering yet");
                    break;
                default:
                    // Reported once per section in WarnAboutUnknownSections.
                    break;
            }
        }

        // ---- [pgbouncer] -------------------------------------------------------------------------

        private void ApplyPgBouncer(IniEntry e)
        {
            var key = e.Key.ToLowerInvariant();
            var v = e.Value;
            switch (key)
            {
                case "listen_addr":
                    _config = _config with { ListenAddresses = SplitList(v) };
                    break;
                case "listen_port":
                    if (TryInt(e, key, 1, 65535, out var port))
                    {
                        _config = _config with { ListenPort = port };
                    }

                    break;
                case "unix_socket_dir":
                    _config = _config with { UnixSocketDir = v };
                    break;
                case "unix_socket_mode":
                    if (TryFileMode(e, key, out var mode))
                    {
                        _config = _config with { UnixSocketMode = mode };
                    }

                    break;
                case "auth_type":
                    if (TryAuthType(e, key, out var authType))
                    {
                        _authTypeEntry = e;
                        _config = _config with { AuthType = authType };
                    }

                    break;
                case "auth_file":
                    _authFileEntry = v.Length == 0 ? null : e;
                    _config = _config with { AuthFile = ResolvePath(e, v) };
                    break;
                case "auth_hba_file":
                    _authHbaFileEntry = v.Length == 0 ? null : e;
                    _config = _config with { AuthHbaFile = ResolvePath(e, v) };
                    break;
                case "auth_user":
                    _config = _config with { AuthUser = NullIfEmpty(v) };
                    break;
                case "auth_query":
                    _config = _config with { AuthQuery = v };
                    break;
                case "auth_dbname":
                    _config = _config with { AuthDbName = NullIfEmpty(v) };
                    break;
                case "admin_users":
                    _config = _config with { AdminUsers = SplitList(v) };
                    break;
                case "stats_users":
                    _config = _config with { StatsUsers = SplitList(v) };
                    break;
                case "pool_mode":
                    if (TryPoolMode(e, key, v, out var poolMode))
                    {
                        _config = _config with { PoolMode = poolMode };
                    }

                    break;
                case "max_client_conn":
                    if (TryInt(e, key, 0, int.MaxValue, out var maxClientConn))
                    {
                        _config = _config with { MaxClientConn = maxClientConn };
                    }

                    break;
                case "default_pool_size":
                    if (TryInt(e, key, 0, int.MaxValue, out var defaultPoolSize))
                    {
                        _config = _config with { DefaultPoolSize = defaultPoolSize };
                    }

                    break;
                case "min_pool_size":
                    if (TryInt(e, key, 0, int.MaxValue, out var minPoolSize))
                    {
                        _config = _config with { MinPoolSize = minPoolSize };
                    }

                    break;
                case "reserve_pool_size":
                    if (TryInt(e, key, 0, int.MaxValue, out var reservePoolSize))
                    {
                        _config = _config with { ReservePoolSize = reservePoolSize };
                    }

                    break;
                case "max_db_connections":
                    if (TryInt(e, key, 0, int.MaxValue, out var maxDbConnections))
                    {
                        _config = _config with { MaxDbConnections = maxDbConnections };
                    }

                    break;
                case "max_user_connections":
                    if (TryInt(e, key, 0, int.MaxValue, out var maxUserConnections))
                    {
                        _config = _config with { MaxUserConnections = maxUserConnections };
                    }

                    break;
                case "server_reset_query":
                    _config = _config with { ServerResetQuery = v };
                    break;
                case "server_reset_query_always":
                    if (TryBool(e, key, out var resetAlways))
                    {
                        _config = _config with { ServerResetQueryAlways = resetAlways };
                    }

                    break;
                case "server_check_query":
                    _config = _config with { ServerCheckQuery = v };
                    break;
                case "application_name_add_host":
                    if (TryBool(e, key, out var addHost))
                    {
                        _config = _config with { ApplicationNameAddHost = addHost };
                    }

                    break;
                case "max_packet_size":
                    // PgBouncer reads an unsigned int, but no protocol message can exceed Int32 anyway.
                    if (TryLong(e, key, 1, uint.MaxValue, out var maxPacketSize))
                    {
                        _config = _config with { MaxPacketSize = (int)Math.Min(maxPacketSize, int.MaxValue) };
                    }

                    break;
                case "pkt_buf":
                    if (TryInt(e, key, 1, int.MaxValue, out var pktBuf))
                    {
                        _config = _config with { PktBuf = pktBuf };
                    }

                    break;
                case "max_prepared_statements":
                    if (TryInt(e, key, 0, int.MaxValue, out var maxPrepared))
                    {
                        _config = _config with { MaxPreparedStatements = maxPrepared };
                    }

                    break;
                case "ignore_startup_parameters":
                    _config = _config with { IgnoreStartupParameters = SplitList(v) };
                    break;
                case "logfile":
                    _config = _config with { LogFile = ResolvePath(e, v) };
                    break;
                case "pidfile":
                    _config = _config with { PidFile = ResolvePath(e, v) };
                    break;
                case "log_connections":
                    if (TryBool(e, key, out var logConnections))
                    {
                        _config = _config with { LogConnections = logConnections };
                    }

                    break;
                case "log_disconnections":
                    if (TryBool(e, key, out var logDisconnections))
                    {
                        _config = _config with { LogDisconnections = logDisconnections };
                    }

                    break;
                case "log_pooler_errors":
                    if (TryBool(e, key, out var logPoolerErrors))
                    {
                        _config = _config with { LogPoolerErrors = logPoolerErrors };
                    }

                    break;
                case "so_reuseport":
                    if (TryBool(e, key, out var reusePort))
                    {
                        _config = _config with { SoReuseport = reusePort };
                    }

                    break;
                case "log_stats":
                    if (TryBool(e, key, out var logStats))
                    {
                        _config = _config with { LogStats = logStats };
                    }

                    break;
                case "verbose":
                    if (TryInt(e, key, 0, int.MaxValue, out var verbose))
                    {
                        _config = _config with { Verbose = verbose };
                    }

                    break;
                case "client_tls_sslmode" or "client_tls_key_file" or "client_tls_cert_file" or "client_tls_ca_file"
                    or "client_tls_protocols" or "client_tls_ciphers" or "client_tls13_ciphers":
                    _clientTlsEntry ??= e;
                    _config = _config with { ClientTls = ApplyTls(e, key, _config.ClientTls) };
                    break;
                case "server_tls_sslmode" or "server_tls_key_file" or "server_tls_cert_file" or "server_tls_ca_file"
                    or "server_tls_protocols" or "server_tls_ciphers" or "server_tls13_ciphers":
                    _serverTlsEntry ??= e;
                    _config = _config with { ServerTls = ApplyTls(e, key, _config.ServerTls) };
                    break;
                case "client_tls_ecdhcurve":
                    // .NET's SslStream has no setting for the key-exchange groups (OpenSSL's SSL_CTX_set1_groups).
                    if (!e.Value.Trim().Equals("auto", StringComparison.OrdinalIgnoreCase) && e.Value.Trim().Length > 0)
                    {
                        Warn(e, key, $"client_tls_ecdhcurve = {e.Value.Trim()} cannot be applied: .NET's TLS (SslStream) offers no way to choose the "
                            + "ECDH curves, so the system OpenSSL's default groups (X25519, P-256, P-384, ...) are offered; ignored");
                    }

                    break;
                case "client_tls_dheparams":
                    switch (e.Value.Trim().ToLowerInvariant())
                    {
                        case "" or "auto":
                            _config = _config with { ClientTls = _config.ClientTls with { NoDhe = false } };
                            break;
                        case "none":
                            _config = _config with { ClientTls = _config.ClientTls with { NoDhe = true } };
                            break;
                        default:
                            // "legacy" or a PEM file of DH parameters: .NET cannot hand either to OpenSSL.
                            Warn(e, key, $"client_tls_dheparams = {e.Value.Trim()} cannot be applied: .NET's TLS (SslStream) cannot load DH parameters, "
                                + "so DHE suites (if enabled) use OpenSSL's built-in parameters; \"none\" (no DHE) and \"auto\" can be applied; ignored");
                            break;
                    }

                    break;
                default:
                    if (!TryApplyPgBouncerTime(e, key))
                    {
                        ApplyOtherPgBouncerKey(e, key);
                    }

                    break;
            }
        }

        private bool TryApplyPgBouncerTime(IniEntry e, string key)
        {
            Func<ProxyConfig, TimeSpan, ProxyConfig>? set = key switch
            {
                "reserve_pool_timeout" => static (c, t) => c with { ReservePoolTimeout = t },
                "server_check_delay" => static (c, t) => c with { ServerCheckDelay = t },
                "server_lifetime" => static (c, t) => c with { ServerLifetime = t },
                "server_idle_timeout" => static (c, t) => c with { ServerIdleTimeout = t },
                "server_connect_timeout" => static (c, t) => c with { ServerConnectTimeout = t },
                "server_login_retry" => static (c, t) => c with { ServerLoginRetry = t },
                "query_wait_timeout" => static (c, t) => c with { QueryWaitTimeout = t },
                "query_timeout" => static (c, t) => c with { QueryTimeout = t },
                "client_login_timeout" => static (c, t) => c with { ClientLoginTimeout = t },
                "client_idle_timeout" => static (c, t) => c with { ClientIdleTimeout = t },
                "idle_transaction_timeout" => static (c, t) => c with { IdleTransactionTimeout = t },
                "stats_period" => static (c, t) => c with { StatsPeriod = t },
                "shutdown_wait_timeout" => static (c, t) => c with { ShutdownWaitTimeout = t },
                "suspend_timeout" => static (c, t) => c with { SuspendTimeout = t },
                _ => null,
            };
            if (set is null)
            {
                return false;
            }

            if (TryTime(e, key, e.Value, out var value))
            {
                _config = set(_config, value);
            }

            return true;
        }

        private void ApplyOtherPgBouncerKey(IniEntry e, string key)
        {
            if (PgBouncerKeys.NotImplemented.Contains(key))
            {
                Note(e, key, $"setting \"{key}\" is a PgBouncer setting FastPool does not implement yet; ignored");
            }
            else
            {
                Warn(e, key, $"unknown setting \"{key}\" in [pgbouncer]; ignored");
            }
        }

        // ---- [databases] -------------------------------------------------------------------------

        private void ApplyDatabase(IniEntry e)
        {
            var name = e.Key;
            if (name is "pgbouncer" or "fastpool")
            {
                Error(e, name, $"database name \"{name}\" is reserved for the admin console");
                return;
            }

            if (!ConnectString.TryParse(e.Value, out var pairs, out var syntaxError))
            {
                Error(e, name, $"invalid connect string for database \"{name}\": {syntaxError}");
                return;
            }

            var draft = new DatabaseDraft(e, name);
            var ok = true;
            foreach (var (rawKey, value) in pairs)
            {
                ok &= ApplyDatabaseParameter(e, draft, rawKey.ToLowerInvariant(), value);
            }

            if (!ok)
            {
                return;
            }

            if (name == "*")
            {
                _fallback = draft;
                return;
            }

            var existing = _databases.FindIndex(d => string.Equals(d.Name, name, StringComparison.Ordinal));
            if (existing >= 0)
            {
                // PgBouncer silently lets the later definition win; say so, since it is usually a leftover.
                Warn(e, name, $"database \"{name}\" is defined again; this definition replaces the one at {_databases[existing].Entry.Origin}");
                _databases[existing] = draft;
            }
            else
            {
                _databases.Add(draft);
            }
        }

        private bool ApplyDatabaseParameter(IniEntry e, DatabaseDraft d, string key, string value)
        {
            var where = $"for database \"{d.Name}\"";
            switch (key)
            {
                case "dbname":
                    d.Config = d.Config with { DbName = value };
                    return true;
                case "host":
                    return TryHosts(e, d, value);
                case "port":
                    return TryPorts(e, d, value);
                case "user":
                    d.Config = d.Config with { User = value };
                    return true;
                case "password":
                    d.Config = d.Config with { Password = value };
                    return true;
                case "auth_user":
                    d.Config = d.Config with { AuthUser = value };
                    return true;
                case "auth_query":
                    d.Config = d.Config with { AuthQuery = value.Length > 0 ? value : null };
                    return true;
                case "auth_dbname":
                    d.Config = d.Config with { AuthDbName = value.Length > 0 ? value : null };
                    return true;
                case "pool_mode":
                    if (!TryPoolMode(e, key, value, out var mode, where))
                    {
                        return false;
                    }

                    d.Config = d.Config with { PoolMode = mode };
                    return true;
                case "pool_size":
                    return TryOptionalCount(e, key, value, where, v => d.Config = d.Config with { PoolSize = v });
                case "min_pool_size":
                    return TryOptionalCount(e, key, value, where, v => d.Config = d.Config with { MinPoolSize = v });
                case "reserve_pool":
                case "reserve_pool_size":
                    return TryOptionalCount(e, key, value, where, v => d.Config = d.Config with { ReservePoolSize = v });
                case "max_db_connections":
                    return TryOptionalCount(e, key, value, where, v => d.Config = d.Config with { MaxDbConnections = v });
                case "connect_query":
                    d.Config = d.Config with { ConnectQuery = value };
                    return true;
                case "client_encoding":
                    d.Config = d.Config with { ClientEncoding = value };
                    return true;
                case "datestyle":
                    d.Config = d.Config with { DateStyle = value };
                    return true;
                case "timezone":
                    d.Config = d.Config with { TimeZone = value };
                    return true;
                case "application_name":
                    d.Config = d.Config with { ApplicationName = value };
                    return true;
                default:
                    if (PgBouncerKeys.DatabaseNotImplemented.Contains(key))
                    {
                        Note(e, key, $"parameter \"{key}\" {where} is a PgBouncer setting FastPool does not implement yet; ignored");
                    }
                    else
                    {
                        Warn(e, key, $"unknown parameter \"{key}\" {where}; ignored");
                    }

                    return true;
            }
        }

        private bool TryHosts(IniEntry e, DatabaseDraft d, string value)
        {
            var hosts = value.Split(',', StringSplitOptions.TrimEntries);
            if (Array.IndexOf(hosts, "") >= 0)
            {
                Error(e, "host", $"invalid value \"{value}\" for host for database \"{d.Name}\"; accepted: a host name, IP address or socket directory, or a comma-separated list of them without empty entries");
                return false;
            }

            d.Hosts = hosts;
            return true;
        }

        private bool TryPorts(IniEntry e, DatabaseDraft d, string value)
        {
            var parts = value.Split(',', StringSplitOptions.TrimEntries);
            var ports = new int[parts.Length];
            for (var i = 0; i < parts.Length; i++)
            {
                if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out ports[i]) || ports[i] is < 1 or > 65535)
                {
                    Error(e, "port", $"invalid value \"{value}\" for port for database \"{d.Name}\"; accepted: a port from 1 to 65535, or a comma-separated list with one port per host");
                    return false;
                }
            }

            d.Ports = ports;
            return true;
        }

        private DatabaseConfig Finish(DatabaseDraft d)
        {
            var ports = d.Ports ?? [5432];
            string[] hosts;
            if (d.Hosts is not null)
            {
                hosts = d.Hosts;
            }
            else if (_config.UnixSocketDir.Length > 0)
            {
                // PgBouncer's default with no host= is the unix socket in unix_socket_dir.
                hosts = [_config.UnixSocketDir];
            }
            else
            {
                Warn(d.Entry, d.Name, $"database \"{d.Name}\" has no host= and unix_socket_dir is empty; using 127.0.0.1");
                hosts = ["127.0.0.1"];
            }

            if (ports.Length != 1 && ports.Length != hosts.Length)
            {
                Error(d.Entry, "port", $"database \"{d.Name}\" lists {ports.Length} ports for {hosts.Length} host(s); accepted: one port for all hosts, or exactly one port per host");
                return d.Config;
            }

            var nodes = new NodeEndpoint[hosts.Length];
            for (var i = 0; i < hosts.Length; i++)
            {
                nodes[i] = new NodeEndpoint(hosts[i], ports.Length == 1 ? ports[0] : ports[i]);
            }

            return d.Config with { Nodes = nodes };
        }

        // ---- [users] -----------------------------------------------------------------------------

        private void ApplyUser(IniEntry e)
        {
            var name = e.Key;
            if (!ConnectString.TryParse(e.Value, out var pairs, out var syntaxError))
            {
                Error(e, name, $"invalid settings for user \"{name}\": {syntaxError}");
                return;
            }

            var user = new UserConfig { Name = name };
            var where = $"for user \"{name}\"";
            var ok = true;
            foreach (var (rawKey, value) in pairs)
            {
                var key = rawKey.ToLowerInvariant();
                switch (key)
                {
                    case "pool_mode":
                        if (TryPoolMode(e, key, value, out var mode, where))
                        {
                            user = user with { PoolMode = mode };
                        }
                        else
                        {
                            ok = false;
                        }

                        break;
                    case "pool_size":
                        ok &= TryOptionalCount(e, key, value, where, v => user = user with { PoolSize = v });
                        break;
                    case "max_user_connections":
                        ok &= TryOptionalCount(e, key, value, where, v => user = user with { MaxUserConnections = v });
                        break;
                    default:
                        if (PgBouncerKeys.UserNotImplemented.Contains(key))
                        {
                            Note(e, key, $"parameter \"{key}\" {where} is a PgBouncer setting FastPool does not implement yet; ignored");
                        }
                        else
                        {
                            Warn(e, key, $"unknown parameter \"{key}\" {where}; ignored");
                        }

                        break;
                }
            }

            if (ok)
            {
                _users[name] = user;
            }
        }

        // ---- [fastpool] --------------------------------------------------------------------------

        private void ApplyFastPool(IniEntry e)
        {
            var key = e.Key.ToLowerInvariant();
            _fastPoolRaw[key] = e.Value;
            if (ApplyFailover(e, key) || TryApplyRouting(e, key) || TryApplyCache(e, key))
            {
                return;
            }

            switch (key)
            {
                case "workers" when TryInt(e, key, 0, 4096, out var workers):
                    _workers = workers;
                    break;
                case "io_threads" when TryInt(e, key, 0, 1024, out var ioThreads):
                    _ioThreads = ioThreads;
                    break;
                case "idle_spin_us" when TryInt(e, key, 0, 10_000, out var spin):
                    _fastPool = _fastPool with { IdleSpinMicros = spin };
                    break;
                case "auth_query_cache_ttl" when TryTime(e, key, e.Value, out var ttl):
                    _fastPool = _fastPool with { AuthQueryCacheTtl = ttl };
                    break;
                case "sr_check_period" when TryTime(e, key, e.Value, out var period):
                    _fastPool = _fastPool with { SrCheckPeriod = period };
                    break;
                case "metrics_listen":
                    if (e.Value.Trim().Length == 0)
                    {
                        _fastPool = _fastPool with { MetricsListen = null };
                    }
                    else if (ListenEndpoint.TryParse(e.Value.Trim(), out var metrics))
                    {
                        _fastPool = _fastPool with { MetricsListen = metrics };
                    }
                    else
                    {
                        Error(e, key, $"metrics_listen \"{e.Value}\" is not valid; expected HOST:PORT (e.g. 127.0.0.1:9127, *:9127, [::1]:9127)");
                    }

                    break;
                case "sr_check_user":
                    _fastPool = _fastPool with { SrCheckUser = e.Value.Length > 0 ? e.Value : null };
                    break;
                case "sr_check_password":
                    _fastPool = _fastPool with { SrCheckPassword = e.Value.Length > 0 ? e.Value : null };
                    break;
                case "sr_check_database":
                    _fastPool = _fastPool with { SrCheckDatabase = e.Value.Length > 0 ? e.Value : "postgres" };
                    break;
                case "pin_listen":
                case "pin_advisory_locks":
                case "pin_temp_tables":
                case "pin_prepare":
                case "pin_hold_cursors":
                case "pin_session_authorization":
                    if (TryBool(e, key, out var pin))
                    {
                        var reason = PinReasonsText.FromSettingName(key);
                        _pins = pin ? _pins | reason : _pins & ~reason;
                    }

                    break;
                case "transport":
                    switch (e.Value.Trim().ToLowerInvariant())
                    {
                        case "auto":
                            _transport = Transport.TransportKind.Auto;
                            break;
                        case "epoll":
                            _transport = Transport.TransportKind.Epoll;
                            break;
                        case "sockets":
                            _transport = Transport.TransportKind.Sockets;
                            break;
                        case "io_uring":
                            _transport = Transport.TransportKind.IoUring;
                            break;
                        default:
                            Error(e, key, $"transport \"{e.Value}\" is not valid; accepted: auto, epoll, io_uring, sockets");
                            break;
                    }

                    break;
            }
        }

        // ---- auth_file ---------------------------------------------------------------------------

        /// <summary>
        /// auth_type = any logs every client in as the entry's user=: an entry without one can serve no client (each
        /// gets 08P01 "bouncer config error", as from PgBouncer). A warning, not an error: PgBouncer starts too.
        /// </summary>
        private void CheckAnyUsers()
        {
            if (_config.AuthType != AuthType.Any || _authTypeEntry is null)
            {
                return;
            }

            var entries = _config.Databases.Where(d => d.User is null).Select(d => d.Name).ToList();
            if (_config.FallbackDatabase is { User: null })
            {
                entries.Add("*");
            }

            if (entries.Count > 0)
            {
                Warn(_authTypeEntry, "auth_type", $"auth_type = any logs clients in as the database entry's user=, which {string.Join(", ", entries.Select(n => $"\"{n}\""))} "
                    + "lack; their clients will be refused");
            }
        }

        private void LoadAuthFile()
        {
            if (_authFileEntry is null || _config.AuthFile is null)
            {
                return;
            }

            if (!IniFile.TryReadFile(_config.AuthFile, out var text, out var error))
            {
                Error(_authFileEntry, "auth_file", $"cannot read auth_file \"{_config.AuthFile}\": {error}");
                return;
            }

            var users = AuthFileParser.Parse(text, _config.AuthFile, _errors);
            _config = _config with { AuthFileUsers = users };
        }

        // ---- auth_hba_file -----------------------------------------------------------------------

        /// <summary>Read only for auth_type = hba, as PgBouncer does; any line it cannot apply stops startup.</summary>
        private void LoadHbaFile()
        {
            if (_config.AuthType != AuthType.Hba || _authTypeEntry is null)
            {
                return;
            }

            if (_authHbaFileEntry is null || _config.AuthHbaFile is null)
            {
                Error(_authTypeEntry, "auth_type", "auth_type = hba needs auth_hba_file: a file in pg_hba.conf format with the rules to apply");
                return;
            }

            if (!IniFile.TryReadFile(_config.AuthHbaFile, out var text, out var error))
            {
                Error(_authHbaFileEntry, "auth_hba_file", $"cannot read auth_hba_file \"{_config.AuthHbaFile}\": {error}");
                return;
            }

            _config = _config with { HbaRules = HbaParser.Parse(text, _config.AuthHbaFile, _errors) };
        }

        // ---- TLS ---------------------------------------------------------------------------------

        /// <summary>One client_tls_* or server_tls_* key (the part after the prefix decides).</summary>
        private TlsSettings ApplyTls(IniEntry e, string key, TlsSettings tls)
        {
            var v = e.Value;
            if (key.EndsWith("_tls13_ciphers", StringComparison.Ordinal))
            {
                if (TlsValues.TryParseTls13Ciphers(v, out var tls13, out var tls13Error))
                {
                    return tls with { Tls13CipherSuites = tls13 };
                }

                Error(e, key, $"invalid value \"{v}\" for {key}: {tls13Error}; accepted: {TlsValues.Tls13CiphersAccepted}");
                return tls;
            }

            switch (key[(key.IndexOf("_tls_", StringComparison.Ordinal) + 5)..])
            {
                case "sslmode":
                    if (TlsValues.TryParseMode(v, out var mode))
                    {
                        return tls with { Mode = mode };
                    }

                    InvalidValue(e, key, v, TlsValues.ModeAccepted);
                    return tls;
                case "key_file":
                    return tls with { KeyFile = ResolvePath(e, v) };
                case "cert_file":
                    return tls with { CertFile = ResolvePath(e, v) };
                case "ca_file":
                    return tls with { CaFile = ResolvePath(e, v) };
                case "protocols":
                    if (TlsValues.TryParseProtocols(v, out var protocols))
                    {
                        return tls with { Protocols = protocols };
                    }

                    InvalidValue(e, key, v, TlsValues.ProtocolsAccepted);
                    return tls;
                default:
                    if (TlsValues.TryParseCiphers(v, out var suites, out var error))
                    {
                        return tls with { CipherSuites = suites };
                    }

                    Error(e, key, $"invalid value \"{v}\" for {key}: {error}; accepted: {TlsValues.CiphersAccepted}");
                    return tls;
            }
        }

        /// <summary>Loads the certificate files now, so a missing or unreadable file stops startup (or a reload) with its name.</summary>
        private void CheckTls()
        {
            // Files are loaded only when they are used, as PgBouncer does: a CA file named next to sslmode = disable is no error.
            if (_config.ClientTls.Enabled || _config.AuthType == AuthType.Cert)
            {
                var entry = _clientTlsEntry ?? _authTypeEntry!;
                foreach (var problem in Transport.TlsMaterial.Check(_config.ClientTls, clientSide: true))
                {
                    Error(entry, "client_tls_sslmode", problem);
                }

                if (_config.AuthType == AuthType.Cert && (!_config.ClientTls.Enabled || _config.ClientTls.CaFile is null))
                {
                    Error(_authTypeEntry ?? entry, "auth_type", "auth_type = cert needs client TLS (client_tls_sslmode) and client_tls_ca_file to check client certificates against");
                }
            }

            if (_serverTlsEntry is not null && _config.ServerTls.Enabled)
            {
                foreach (var problem in Transport.TlsMaterial.Check(_config.ServerTls, clientSide: false))
                {
                    Error(_serverTlsEntry, "server_tls_sslmode", problem);
                }
            }
        }

        // ---- sections ----------------------------------------------------------------------------

        private void WarnAboutUnknownSections(IniFile ini)
        {
            foreach (var header in ini.Sections)
            {
                var name = header.Name.ToLowerInvariant();
                if (name is SectionPgBouncer or SectionDatabases or SectionUsers or SectionPeers or SectionFastPool)
                {
                    continue;
                }

                if (_warnedSections.Add(name))
                {
                    Warn(header.File, header.Line, null, $"unknown section [{header.Name}]; its settings are ignored");
                }
            }
        }

        private void WarnAboutRepeatedPgBouncerSections(IniFile ini)
        {
            // PgBouncer re-applies every default at each [pgbouncer] header, silently dropping what an
            // earlier block set; FastPool merges instead, which is what such files mean, but the two differ.
            IniSectionHeader? first = null;
            foreach (var header in ini.Sections)
            {
                if (!string.Equals(header.Name, SectionPgBouncer, StringComparison.OrdinalIgnoreCase))
                {
                    continue;
                }

                if (first is null)
                {
                    first = header;
                    continue;
                }

                Warn(header.File, header.Line, null, $"[pgbouncer] section repeated (first at {first.File}:{first.Line}); FastPool keeps the earlier settings, whereas PgBouncer would reset them to their defaults here");
            }
        }

        // ---- value parsing -----------------------------------------------------------------------

        private bool TryInt(IniEntry e, string key, int min, int max, out int value)
        {
            var ok = TryLong(e, key, min, max, out var wide);
            value = (int)wide;
            return ok;
        }

        private bool TryLong(IniEntry e, string key, long min, long max, out long value)
        {
            if (ConfigValues.TryParseCInteger(e.Value, out value) && value >= min && value <= max)
            {
                return true;
            }

            var accepted = max >= int.MaxValue ? $"an integer >= {min}" : $"an integer from {min} to {max}";
            InvalidValue(e, key, e.Value, accepted);
            value = 0;
            return false;
        }

        private bool TryOptionalCount(IniEntry e, string key, string text, string where, Action<int?> set)
        {
            // Connect strings use atoi() in PgBouncer, so decimal only; -1 is PgBouncer's "not set".
            if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) && value >= -1)
            {
                set(value == -1 ? null : value);
                return true;
            }

            InvalidValue(e, key, text, "an integer >= 0", where);
            return false;
        }

        private bool TryBool(IniEntry e, string key, out bool value)
        {
            if (ConfigValues.TryParseBool(e.Value, out value))
            {
                return true;
            }

            InvalidValue(e, key, e.Value, BoolAccepted);
            return false;
        }

        private bool TryTime(IniEntry e, string key, string text, out TimeSpan value)
        {
            if (ConfigValues.TryParseTime(text, out value))
            {
                return true;
            }

            InvalidValue(e, key, text, TimeAccepted);
            return false;
        }

        private bool TryFileMode(IniEntry e, string key, out int value)
        {
            if (ConfigValues.TryParseFileMode(e.Value, out value))
            {
                return true;
            }

            InvalidValue(e, key, e.Value, "an octal file mode from 0 to 07777, e.g. 0777");
            return false;
        }

        private bool TryPoolMode(IniEntry e, string key, string text, out PoolMode value, string? where = null)
        {
            if (ConfigValues.TryParsePoolMode(text, out value))
            {
                return true;
            }

            InvalidValue(e, key, text, PoolModeAccepted, where);
            return false;
        }

        private bool TryAuthType(IniEntry e, string key, out AuthType value)
        {
            if (ConfigValues.TryParseAuthType(e.Value, out value))
            {
                return true;
            }

            var lower = e.Value.ToLowerInvariant();
            if (lower is "ldap" or "pam" or "peer" or "crypt")
            {
                // Valid for PgBouncer, so "invalid" would mislead; falling back to another method would be unsafe.
                Error(e, key, $"auth_type \"{e.Value}\" is not supported by FastPool; accepted: {AuthTypeAccepted}");
            }
            else
            {
                InvalidValue(e, key, e.Value, AuthTypeAccepted);
            }

            return false;
        }

        private void InvalidValue(IniEntry e, string key, string text, string accepted, string? where = null)
        {
            var context = where is null ? "" : " " + where;
            Error(e, key, $"invalid value \"{text}\" for {key}{context}; accepted: {accepted}");
        }

        private static string? ResolvePath(IniEntry e, string value)
        {
            if (value.Length == 0)
            {
                return null;
            }

            // Relative to the file that names it rather than the working directory, so the same file
            // means the same thing however the daemon was started.
            return Path.GetFullPath(Path.IsPathRooted(value) ? value : Path.Combine(e.Directory, value));
        }

        private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;

        private static string[] SplitList(string value) =>
            value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

        // ---- diagnostics -------------------------------------------------------------------------

        private void Error(IniEntry e, string? key, string message) => _errors.Add(new ConfigDiagnostic(e.File, e.Line, key, message));

        private void Warn(IniEntry e, string? key, string message) => _warnings.Add(new ConfigDiagnostic(e.File, e.Line, key, message));

        private void Warn(string file, int line, string? key, string message) => _warnings.Add(new ConfigDiagnostic(file, line, key, message));

        private void Note(IniEntry e, string? key, string message) => _notes.Add(new ConfigDiagnostic(e.File, e.Line, key, message));
    }

    /// <summary>A [databases] entry while the rest of the file is still being read (host defaults depend on unix_socket_dir).</summary>
    private sealed class DatabaseDraft(IniEntry entry, string name)
    {
        public IniEntry Entry { get; } = entry;

        public string Name { get; } = name;

        public DatabaseConfig Config { get; set; } = new() { Name = name, Origin = entry.Origin };

        public string[]? Hosts { get; set; }

        public int[]? Ports { get; set; }
    }
}

/// <summary>Value syntaxes of pgbouncer.ini, shared by the loader and its tests.</summary>
internal static class ConfigValues
{
    /// <summary>
    /// Integers as PgBouncer reads them (strtol with base 0): decimal, 0x-prefixed hex, or 0-prefixed octal,
    /// with an optional sign. Octal matters because unix_socket_mode = 0777 relies on it.
    /// </summary>
    public static bool TryParseCInteger(string text, out long value)
    {
        value = 0;
        var s = text.AsSpan().Trim();
        var negative = false;
        if (s.Length > 0 && s[0] is '+' or '-')
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        var radix = 10;
        if (s.Length > 2 && s[0] == '0' && s[1] is 'x' or 'X')
        {
            radix = 16;
            s = s[2..];
        }
        else if (s.Length > 1 && s[0] == '0')
        {
            radix = 8;
            s = s[1..];
        }

        if (s.IsEmpty)
        {
            return false;
        }

        long result = 0;
        foreach (var c in s)
        {
            var digit = c switch
            {
                >= '0' and <= '9' => c - '0',
                >= 'a' and <= 'f' => c - 'a' + 10,
                >= 'A' and <= 'F' => c - 'A' + 10,
                _ => int.MaxValue,
            };
            if (digit >= radix)
            {
                return false;
            }

            if (result > (long.MaxValue - digit) / radix)
            {
                return false;
            }

            result = (result * radix) + digit;
        }

        value = negative ? -result : result;
        return true;
    }

    /// <summary>PgBouncer's booleans are integers (non-zero is true); the usual words are accepted too.</summary>
    public static bool TryParseBool(string text, out bool value)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "on" or "true" or "yes":
                value = true;
                return true;
            case "off" or "false" or "no":
                value = false;
                return true;
        }

        var ok = TryParseCInteger(text, out var number);
        value = ok && number != 0;
        return ok;
    }

    /// <summary>
    /// PgBouncer reads a time as a non-negative decimal number of seconds (fractions allowed, kept to the
    /// microsecond). FastPool also accepts a unit suffix (us, ms, s, min, h, d), which PgBouncer does not:
    /// a value with a unit is an extension, while a bare number keeps PgBouncer's meaning exactly.
    /// </summary>
    public static bool TryParseTime(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        var s = text.AsSpan().Trim();
        var unitStart = s.Length;
        while (unitStart > 0 && char.IsAsciiLetter(s[unitStart - 1]))
        {
            unitStart--;
        }

        var unit = s[unitStart..];
        var number = s[..unitStart].TrimEnd();
        double scale; // microseconds per unit
        if (unit.IsEmpty || unit.Equals("s", StringComparison.OrdinalIgnoreCase))
        {
            scale = 1e6;
        }
        else if (unit.Equals("us", StringComparison.OrdinalIgnoreCase))
        {
            scale = 1;
        }
        else if (unit.Equals("ms", StringComparison.OrdinalIgnoreCase))
        {
            scale = 1e3;
        }
        else if (unit.Equals("min", StringComparison.OrdinalIgnoreCase))
        {
            scale = 60e6;
        }
        else if (unit.Equals("h", StringComparison.OrdinalIgnoreCase))
        {
            scale = 3600e6;
        }
        else if (unit.Equals("d", StringComparison.OrdinalIgnoreCase))
        {
            scale = 86400e6;
        }
        else
        {
            return false;
        }

        if (number.IsEmpty
            || !double.TryParse(number, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out var amount)
            || !double.IsFinite(amount)
            || amount < 0)
        {
            return false;
        }

        // Rounded rather than truncated like PgBouncer, so that binary fractions such as 0.3 s do not
        // come out a microsecond short; the difference is below anything a timer can observe.
        var microseconds = Math.Round(amount * scale);
        if (microseconds >= TimeSpan.MaxValue.Ticks / TimeSpan.TicksPerMicrosecond)
        {
            return false;
        }

        value = TimeSpan.FromTicks((long)microseconds * TimeSpan.TicksPerMicrosecond);
        return true;
    }

    /// <summary>A file mode is always octal (as chmod reads it), with or without the leading 0; 0x hex is also taken.</summary>
    public static bool TryParseFileMode(string text, out int value)
    {
        value = 0;
        var s = text.Trim();
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            if (!TryParseCInteger(s, out var hex) || hex is < 0 or > 0xFFF)
            {
                return false;
            }

            value = (int)hex;
            return true;
        }

        if (s.Length == 0)
        {
            return false;
        }

        var result = 0;
        foreach (var c in s)
        {
            if (c is < '0' or > '7')
            {
                return false;
            }

            result = (result * 8) + (c - '0');
            if (result > 0xFFF)
            {
                return false;
            }
        }

        value = result;
        return true;
    }

    public static bool TryParsePoolMode(string text, out PoolMode value)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "session":
                value = PoolMode.Session;
                return true;
            case "transaction":
                value = PoolMode.Transaction;
                return true;
            case "statement":
                value = PoolMode.Statement;
                return true;
            default:
                value = default;
                return false;
        }
    }

    public static bool TryParseAuthType(string text, out AuthType value)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "trust":
                value = AuthType.Trust;
                return true;
            case "any":
                value = AuthType.Any;
                return true;
            case "plain":
                value = AuthType.Plain;
                return true;
            case "md5":
                value = AuthType.Md5;
                return true;
            case "scram-sha-256":
                value = AuthType.ScramSha256;
                return true;
            case "cert":
                value = AuthType.Cert;
                return true;
            case "hba":
                value = AuthType.Hba;
                return true;
            default:
                value = default;
                return false;
        }
    }
}

/// <summary>Settings PgBouncer knows that FastPool accepts without acting on them (yet).</summary>
internal static class PgBouncerKeys
{
    /// <summary>[pgbouncer] keys of PgBouncer (current and recent releases) that FastPool does not implement.</summary>
    public static readonly HashSet<string> NotImplemented = new(StringComparer.Ordinal)
    {
        "auth_ident_file", "auth_ldap_options", "auth_pam_confdir",
        "autodb_idle_timeout", "cancel_wait_timeout",
        "conffile", "disable_pqexec",
        "dns_max_ttl", "dns_nxdomain_ttl", "dns_zone_check_period",
        "job_name", "listen_backlog", "login_notify_message",
        "max_db_client_connections", "max_user_client_connections",
        "peer_id", "pool_idle_timeout", "query_wait_notify", "resolv_conf", "sbuf_loopcnt", "scram_iterations",
        "server_fast_close", "server_round_robin",
        "service_name",
        "syslog", "syslog_facility", "syslog_ident",
        "tcp_defer_accept", "tcp_keepalive", "tcp_keepcnt", "tcp_keepidle", "tcp_keepintvl",
        "tcp_socket_buffer", "tcp_user_timeout",
        "track_extra_parameters", "transaction_timeout", "unix_socket_group", "user",
    };

    /// <summary>Connect-string parameters PgBouncer accepts in [databases] that FastPool does not implement.</summary>
    public static readonly HashSet<string> DatabaseNotImplemented = new(StringComparer.Ordinal)
    {
        "load_balance_hosts", "max_db_client_connections",
        "query_wait_timeout", "server_lifetime", "target_session_attrs",
    };

    /// <summary>Parameters PgBouncer accepts in [users] that FastPool does not implement.</summary>
    public static readonly HashSet<string> UserNotImplemented = new(StringComparer.Ordinal)
    {
        "client_idle_timeout", "idle_transaction_timeout", "max_user_client_connections",
        "query_timeout", "query_wait_timeout", "reserve_pool_size", "transaction_timeout",
    };
}
