using System.Net.Security;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Configuration.Hba;

namespace FastPool.Proxy.Tests.Configuration;

public class ConfigLoaderTests
{
    private static ConfigLoadResult LoadText(string text, string? baseDirectory = null) =>
        ConfigLoader.LoadFromText(text, "pgbouncer.ini", baseDirectory ?? Path.GetTempPath());

    private static ProxyConfig AssertLoaded(ConfigLoadResult result)
    {
        Assert.True(result.Errors.Count == 0, string.Join(Environment.NewLine, result.Errors));
        Assert.True(result.Success);
        Assert.NotNull(result.Config);
        return result.Config;
    }

    private static ConfigDiagnostic AssertSingleError(ConfigLoadResult result)
    {
        Assert.Null(result.Config);
        Assert.False(result.Success);
        return Assert.Single(result.Errors);
    }

    private static DatabaseConfig LoadDatabase(string connectString, string pgbouncerSection = "")
    {
        var config = AssertLoaded(LoadText($"[databases]\ndb = {connectString}\n[pgbouncer]\n{pgbouncerSection}\n"));
        return Assert.Single(config.Databases);
    }

    // ---- a realistic file ----------------------------------------------------------------------

    [Fact]
    public void Debian_pgbouncer_ini_with_typical_edits()
    {
        using var dir = new TempDirectory();
        dir.Write("userlist.txt", """
            "app" "md5a3556571e93b0d20722ba62be61e8c2d"
            "admin" "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVkLWtleS1zdG9yZWQta2V5LXN0b3JlZC1rZXk=:c2VydmVyLWtleS1zZXJ2ZXIta2V5LXNlcnZlci1rZXk="
            "stats" "plainpass"
            """);
        var path = dir.Write("pgbouncer.ini", DebianIni);

        var result = ConfigLoader.Load(path);

        var config = AssertLoaded(result);
        Assert.Empty(result.Warnings);
        Assert.Equal(path, config.SourceFile);

        Assert.Equal(["*"], config.ListenAddresses);
        Assert.Equal(6432, config.ListenPort);
        Assert.Equal("/var/run/postgresql", config.UnixSocketDir);
        Assert.Equal(Convert.ToInt32("777", 8), config.UnixSocketMode);
        Assert.Equal("/var/log/postgresql/pgbouncer.log", config.LogFile);
        Assert.Equal("/var/run/postgresql/pgbouncer.pid", config.PidFile);

        Assert.Equal(AuthType.ScramSha256, config.AuthType);
        Assert.Equal(Path.Combine(dir.Path, "userlist.txt"), config.AuthFile);
        Assert.Equal(3, config.AuthFileUsers.Count);
        Assert.Equal("plainpass", config.AuthFileUsers["stats"]);
        Assert.StartsWith("SCRAM-SHA-256$4096:", config.AuthFileUsers["admin"], StringComparison.Ordinal);
        Assert.Equal(["admin", "postgres"], config.AdminUsers);
        Assert.Equal(["stats", "monitoring"], config.StatsUsers);

        Assert.Equal(PoolMode.Transaction, config.PoolMode);
        Assert.Equal(1000, config.MaxClientConn);
        Assert.Equal(25, config.DefaultPoolSize);
        Assert.Equal(2, config.MinPoolSize);
        Assert.Equal(5, config.ReservePoolSize);
        Assert.Equal(TimeSpan.FromSeconds(3), config.ReservePoolTimeout);
        Assert.Equal(["extra_float_digits", "options"], config.IgnoreStartupParameters);
        Assert.Equal(TimeSpan.FromSeconds(1800), config.ServerLifetime);
        Assert.Equal(TimeSpan.FromSeconds(300), config.ServerIdleTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(500), config.ServerLoginRetry);
        Assert.Equal(TimeSpan.FromSeconds(60), config.QueryWaitTimeout);
        Assert.False(config.LogConnections);
        Assert.True(config.LogDisconnections);
        Assert.Equal(1, config.Verbose);

        // Defaults that the file leaves commented out stay PgBouncer's.
        Assert.Equal("DISCARD ALL", config.ServerResetQuery);
        Assert.Equal(TimeSpan.FromSeconds(15), config.ServerConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(60), config.ClientLoginTimeout);
        Assert.Equal(4096, config.PktBuf);

        Assert.Equal(["appdb", "reports", "socketdb"], config.Databases.Select(d => d.Name));
        var appdb = config.Databases[0];
        Assert.Equal([new NodeEndpoint("10.0.0.5", 5432)], appdb.Nodes);
        Assert.Equal("app_production", appdb.DbName);
        Assert.Equal(40, appdb.PoolSize);
        Assert.Equal($"{path}:17", appdb.Origin);
        var reports = config.Databases[1];
        Assert.Equal([new NodeEndpoint("10.0.0.6", 5432), new NodeEndpoint("10.0.0.7", 5433)], reports.Nodes);
        Assert.Equal(PoolMode.Session, reports.PoolMode);
        Assert.Equal("reporter", reports.User);
        Assert.Equal("s3cr3t", reports.Password);
        Assert.Equal([new NodeEndpoint("/var/run/postgresql", 5432)], config.Databases[2].Nodes);

        var fallback = Assert.IsType<DatabaseConfig>(config.FallbackDatabase);
        Assert.Equal("*", fallback.Name);
        Assert.Null(fallback.DbName);
        Assert.Equal([new NodeEndpoint("localhost", 5432)], fallback.Nodes);

        var batch = config.Users["batch"];
        Assert.Equal(PoolMode.Session, batch.PoolMode);
        Assert.Equal(2, batch.MaxUserConnections);

        // Every commented-out line and every known-but-unimplemented key is silent.
        Assert.Contains(result.Notes, n => n.Key == "tcp_keepalive");
        Assert.Equal(TlsMode.Prefer, config.ServerTls.Mode);
    }

    /// <summary>Debian's /etc/pgbouncer/pgbouncer.ini (abridged comments) with the edits people usually make.</summary>
    private const string DebianIni = """
        ;;;
        ;;; PgBouncer configuration file
        ;;;

        ;; database name = connect string
        ;;
        ;; connect string params:
        ;;   dbname= host= port= user= password= auth_user=
        ;;   client_encoding= datestyle= timezone=
        ;;   pool_size= reserve_pool_size= max_db_connections=
        ;;   pool_mode= connect_query= application_name=
        [databases]

        ;; foodb over Unix socket
        ;foodb =

        appdb = host=10.0.0.5 dbname=app_production pool_size=40
        reports = host=10.0.0.6,10.0.0.7 port=5432,5433 user=reporter password=s3cr3t pool_mode=session
        socketdb =

        ;; redirect bardb to bazdb on localhost
        ;bardb = host=localhost dbname=bazdb

        ;; fallback connect string
        * = host=localhost

        ;; User-specific configuration
        [users]

        ;user1 = pool_mode=transaction max_user_connections=10
        batch = pool_mode=session max_user_connections=2

        ;; Configuration section
        [pgbouncer]

        ;;;
        ;;; Administrative settings
        ;;;

        logfile = /var/log/postgresql/pgbouncer.log
        pidfile = /var/run/postgresql/pgbouncer.pid

        ;;;
        ;;; Where to wait for clients
        ;;;

        ;; IP address or * which means all IPs
        listen_addr = *
        listen_port = 6432

        ;; Unix socket is also used for -R.
        ;; On Debian it should be /var/run/postgresql
        ;unix_socket_dir = /tmp
        ;unix_socket_mode = 0777
        ;unix_socket_group =
        unix_socket_dir = /var/run/postgresql

        ;;;
        ;;; TLS settings for accepting clients
        ;;;

        ;; disable, allow, require, verify-ca, verify-full
        ;client_tls_sslmode = disable
        ;client_tls_ca_file = <system default>
        ;client_tls_key_file =
        ;client_tls_cert_file =

        ;;;
        ;;; TLS settings for connecting to backend databases
        ;;;

        ;server_tls_sslmode = prefer
        server_tls_sslmode = prefer

        ;;;
        ;;; Authentication settings
        ;;;

        ;; any, trust, plain, md5, cert, hba, pam
        auth_type = scram-sha-256
        auth_file = userlist.txt

        ;; Path to HBA-style auth config
        ;auth_hba_file =

        ;; Query to use to fetch password from database.  Result
        ;; must have 2 columns - username and password hash.
        ;auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename=$1

        ;;;
        ;;; Users allowed into database 'pgbouncer'
        ;;;

        ;; comma-separated list of users who are allowed to change settings
        admin_users = admin, postgres

        ;; comma-separated list of users who are just allowed to use SHOW command
        stats_users = stats, monitoring

        ;;;
        ;;; Pooler personality questions
        ;;;

        ;; When server connection is released back to pool:
        ;;   session      - after client disconnects (default)
        ;;   transaction  - after transaction finishes
        ;;   statement    - after statement finishes
        pool_mode = transaction

        ;; Query for cleaning connection immediately after releasing from
        ;; client.  No need to put ROLLBACK here, pgbouncer does not reuse
        ;; connections where transaction is left open.
        ;server_reset_query = DISCARD ALL

        ;; Comma-separated list of parameters to ignore when given in startup
        ;; packet.  Newer JDBC versions require the extra_float_digits here.
        ignore_startup_parameters = extra_float_digits, options

        ;;;
        ;;; Connection limits
        ;;;

        ;; Total number of clients that can connect
        max_client_conn = 1000

        ;; Default pool size.  20 is good number when transaction pooling
        ;; is in use, in session pooling it needs to be the number of
        ;; max clients you want to handle at any moment
        default_pool_size = 25

        ;; Minimum number of server connections to keep in pool.
        min_pool_size = 2

        ; how many additional connection to allow in case of trouble
        reserve_pool_size = 5

        ;; If a clients needs to wait more than this many seconds, use reserve
        ;; pool.
        reserve_pool_timeout = 3

        ;;;
        ;;; Logging
        ;;;

        ;; log if client connects or server connection is made
        log_connections = 0

        ;; log if and why connection was closed
        ;log_disconnections = 1

        ;; Logging verbosity.  Same as -v switch on command line.
        verbose = 1

        ;;;
        ;;; Timeouts
        ;;;

        server_lifetime = 1800
        server_idle_timeout = 300
        server_login_retry = 0.5
        query_wait_timeout = 60

        ;;;
        ;;; Low-level tuning options
        ;;;

        ;; whether tcp keepalive should be turned on (0/1)
        tcp_keepalive = 1
        ;tcp_keepcnt = 0
        ;tcp_keepidle = 0
        ;tcp_keepintvl = 0

        ;; DNS lookup caching time
        ;dns_max_ttl = 15

        ;; Read additional config from other file
        ;%include /etc/pgbouncer/pgbouncer-other.ini
        """;

    // ---- defaults ------------------------------------------------------------------------------

    [Fact]
    public void Empty_sections_give_pgbouncer_defaults()
    {
        var result = LoadText("[databases]\n\n[pgbouncer]\n");

        var config = AssertLoaded(result);
        Assert.Empty(result.Warnings);
        Assert.Empty(config.Databases);
        Assert.Null(config.FallbackDatabase);
        Assert.Empty(config.Users);
        Assert.Empty(config.AuthFileUsers);
        Assert.Equal(new ProxyConfig { SourceFile = "pgbouncer.ini" }.ListenPort, config.ListenPort);
        Assert.Equal(PoolMode.Session, config.PoolMode);
        Assert.Equal(AuthType.Md5, config.AuthType);
        Assert.Equal(20, config.DefaultPoolSize);
        Assert.Equal(TimeSpan.FromSeconds(120), config.QueryWaitTimeout);
        Assert.Equal("pgbouncer.ini", config.SourceFile);
    }

    // ---- [databases] ---------------------------------------------------------------------------

    [Fact]
    public void Host_list_with_port_list_gives_one_node_per_host()
    {
        var db = LoadDatabase("host=127.0.0.1,127.0.0.1 port=5432,5433");

        Assert.Equal([new NodeEndpoint("127.0.0.1", 5432), new NodeEndpoint("127.0.0.1", 5433)], db.Nodes);
    }

    [Fact]
    public void One_port_applies_to_all_hosts()
    {
        var db = LoadDatabase("host=pg1.example.com,pg2.example.com,2001:db8::1 port=6000");

        Assert.Equal(
            [new NodeEndpoint("pg1.example.com", 6000), new NodeEndpoint("pg2.example.com", 6000), new NodeEndpoint("2001:db8::1", 6000)],
            db.Nodes);
    }

    [Fact]
    public void Default_port_is_5432()
    {
        var db = LoadDatabase("host=db.internal");

        Assert.Equal([new NodeEndpoint("db.internal", 5432)], db.Nodes);
    }

    [Fact]
    public void Host_starting_with_slash_is_a_unix_socket_directory()
    {
        var db = LoadDatabase("host=/var/run/postgresql port=5433");

        var node = Assert.Single(db.Nodes);
        Assert.Equal(new NodeEndpoint("/var/run/postgresql", 5433), node);
        Assert.StartsWith("/", node.Host, StringComparison.Ordinal);
    }

    [Fact]
    public void No_host_means_the_unix_socket_in_unix_socket_dir_even_if_set_later()
    {
        var db = LoadDatabase("dbname=x port=5434", "unix_socket_dir = /run/pg");

        Assert.Equal([new NodeEndpoint("/run/pg", 5434)], db.Nodes);
    }

    [Fact]
    public void No_host_with_default_unix_socket_dir_uses_tmp()
    {
        var db = LoadDatabase("");

        Assert.Equal([new NodeEndpoint("/tmp", 5432)], db.Nodes);
    }

    [Fact]
    public void No_host_and_unix_sockets_disabled_warns_and_uses_loopback()
    {
        var result = LoadText("[databases]\ndb = dbname=x\n[pgbouncer]\nunix_socket_dir =\n");

        var config = AssertLoaded(result);
        Assert.Equal([new NodeEndpoint("127.0.0.1", 5432)], Assert.Single(config.Databases).Nodes);
        Assert.Equal("", config.UnixSocketDir);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal(2, warning.Line);
    }

    [Fact]
    public void Port_count_must_match_host_count()
    {
        var result = LoadText("[databases]\ndb = host=a,b,c port=1,2\n");

        var error = AssertSingleError(result);
        Assert.Equal("pgbouncer.ini:2: database \"db\" lists 2 ports for 3 host(s); accepted: one port for all hosts, or exactly one port per host", error.ToString());
        Assert.Equal("port", error.Key);
    }

    [Theory]
    [InlineData("port=0")]
    [InlineData("port=65536")]
    [InlineData("port=abc")]
    [InlineData("port=5432,")]
    [InlineData("host=a,,b")]
    public void Invalid_host_or_port_is_an_error(string connectString)
    {
        var result = LoadText($"[databases]\ndb = {connectString}\n");

        var error = AssertSingleError(result);
        Assert.Equal(2, error.Line);
        Assert.Contains("for database \"db\"; accepted:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Star_entry_is_the_fallback_database()
    {
        var config = AssertLoaded(LoadText("[databases]\napp = host=a\n* = host=fallback.internal port=6543 pool_size=3\n"));

        var app = Assert.Single(config.Databases);
        var fallback = Assert.IsType<DatabaseConfig>(config.FallbackDatabase);
        Assert.Equal("*", fallback.Name);
        Assert.Null(fallback.DbName);
        Assert.Equal(3, fallback.PoolSize);
        Assert.Equal([new NodeEndpoint("fallback.internal", 6543)], fallback.Nodes);
        Assert.Equal("pgbouncer.ini:3", fallback.Origin);
        Assert.Same(app, config.FindDatabase("app"));
        Assert.Same(fallback, config.FindDatabase("anything_else"));
    }

    [Fact]
    public void Every_per_database_setting_is_read()
    {
        var db = LoadDatabase(
            "host=db1 port=5433 dbname=real_db user=forced password='p w' auth_user=authy pool_mode=transaction " +
            "pool_size=30 min_pool_size=4 reserve_pool=6 max_db_connections=50 connect_query='SELECT set_config(''a'', ''b'', false)' " +
            "client_encoding=UTF8 datestyle='ISO, MDY' timezone=Europe/Berlin application_name=myapp");

        Assert.Equal("db", db.Name);
        Assert.Equal([new NodeEndpoint("db1", 5433)], db.Nodes);
        Assert.Equal("real_db", db.DbName);
        Assert.Equal("forced", db.User);
        Assert.Equal("p w", db.Password);
        Assert.Equal("authy", db.AuthUser);
        Assert.Equal(PoolMode.Transaction, db.PoolMode);
        Assert.Equal(30, db.PoolSize);
        Assert.Equal(4, db.MinPoolSize);
        Assert.Equal(6, db.ReservePoolSize);
        Assert.Equal(50, db.MaxDbConnections);
        Assert.Equal("SELECT set_config('a', 'b', false)", db.ConnectQuery);
        Assert.Equal("UTF8", db.ClientEncoding);
        Assert.Equal("ISO, MDY", db.DateStyle);
        Assert.Equal("Europe/Berlin", db.TimeZone);
        Assert.Equal("myapp", db.ApplicationName);
        Assert.Equal("pgbouncer.ini:2", db.Origin);
    }

    [Fact]
    public void Unset_per_database_settings_are_null_so_globals_apply()
    {
        var db = LoadDatabase("host=db1");

        Assert.Null(db.DbName);
        Assert.Null(db.User);
        Assert.Null(db.Password);
        Assert.Null(db.AuthUser);
        Assert.Null(db.PoolMode);
        Assert.Null(db.PoolSize);
        Assert.Null(db.MinPoolSize);
        Assert.Null(db.ReservePoolSize);
        Assert.Null(db.MaxDbConnections);
        Assert.Null(db.ConnectQuery);
        Assert.Null(db.ClientEncoding);
        Assert.Null(db.DateStyle);
        Assert.Null(db.TimeZone);
        Assert.Null(db.ApplicationName);
    }

    [Fact]
    public void Reserve_pool_size_is_an_alias_and_minus_one_means_not_set()
    {
        Assert.Equal(7, LoadDatabase("reserve_pool_size=7").ReservePoolSize);
        Assert.Null(LoadDatabase("pool_size=-1").PoolSize);
    }

    [Fact]
    public void Connect_string_keys_are_case_insensitive()
    {
        var db = LoadDatabase("HOST=db1 Pool_Size=9 DbName=x");

        Assert.Equal("db1", Assert.Single(db.Nodes).Host);
        Assert.Equal(9, db.PoolSize);
        Assert.Equal("x", db.DbName);
    }

    [Fact]
    public void Quoted_values_support_backslash_escapes()
    {
        var db = LoadDatabase(@"password='it\'s' connect_query='SELECT \'x\''");

        Assert.Equal("it's", db.Password);
        Assert.Equal("SELECT 'x'", db.ConnectQuery);
    }

    [Fact]
    public void Database_names_keep_case_and_may_be_quoted()
    {
        var config = AssertLoaded(LoadText("[databases]\nMyDb = host=a\n\"my-db\" = host=b\n"));

        Assert.Equal(["MyDb", "my-db"], config.Databases.Select(d => d.Name));
        Assert.Null(config.FindDatabase("mydb"));
        Assert.NotNull(config.FindDatabase("my-db"));
    }

    [Fact]
    public void Unparsable_connect_string_is_an_error_with_file_and_line()
    {
        var result = LoadText("[pgbouncer]\nlisten_port = 6432\n[databases]\nok = host=a\nbroken = host='unterminated\n");

        var error = AssertSingleError(result);
        Assert.Equal("pgbouncer.ini:5: invalid connect string for database \"broken\": unterminated quoted value for \"host\"", error.ToString());
        Assert.Equal("broken", error.Key);
    }

    [Fact]
    public void Invalid_per_database_value_names_key_database_and_accepted_values()
    {
        var result = LoadText("[databases]\nappdb = host=a pool_mode=sometimes\n");

        var error = AssertSingleError(result);
        Assert.Equal("pool_mode", error.Key);
        Assert.Equal("pgbouncer.ini:2: invalid value \"sometimes\" for pool_mode for database \"appdb\"; accepted: session, transaction, statement", error.ToString());
    }

    [Fact]
    public void Invalid_per_database_count_is_an_error()
    {
        var result = LoadText("[databases]\nappdb = pool_size=lots\n");

        var error = AssertSingleError(result);
        Assert.Equal("invalid value \"lots\" for pool_size for database \"appdb\"; accepted: an integer >= 0", error.Message);
    }

    [Fact]
    public void Unknown_connect_string_parameter_warns_and_keeps_the_database()
    {
        var result = LoadText("[databases]\n\nappdb = host=a sslmode=require\n");

        var config = AssertLoaded(result);
        Assert.Single(config.Databases);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal("pgbouncer.ini:3: unknown parameter \"sslmode\" for database \"appdb\"; ignored", warning.ToString());
        Assert.Equal("sslmode", warning.Key);
    }

    [Theory]
    [InlineData("load_balance_hosts=disable")]
    [InlineData("max_db_client_connections=10")]
    [InlineData("server_lifetime=100")]
    [InlineData("target_session_attrs=read-write")]
    [InlineData("query_wait_timeout=5")]
    public void Known_pgbouncer_database_parameters_are_accepted_silently(string parameter)
    {
        var result = LoadText($"[databases]\nappdb = host=a {parameter}\n");

        AssertLoaded(result);
        Assert.Empty(result.Warnings);
        Assert.Single(result.Notes);
    }

    [Fact]
    public void Auth_query_settings_are_read_globally_and_per_database()
    {
        var result = LoadText(
            "[pgbouncer]\nauth_user = lookup\nauth_dbname = authdb\n"
            + "[databases]\nappdb = host=a auth_user=other auth_dbname=otherdb auth_query='SELECT u, p FROM f($1)'\n"
            + "[fastpool]\nauth_query_cache_ttl = 500ms\n");

        var config = AssertLoaded(result);
        Assert.Empty(result.Warnings);
        Assert.Equal("lookup", config.AuthUser);
        Assert.Equal("authdb", config.AuthDbName);
        var db = Assert.Single(config.Databases);
        Assert.Equal("other", db.AuthUser);
        Assert.Equal("otherdb", db.AuthDbName);
        Assert.Equal("SELECT u, p FROM f($1)", db.AuthQuery);
        Assert.Equal(TimeSpan.FromMilliseconds(500), config.FastPool.AuthQueryCacheTtl);
    }

    [Fact]
    public void Auth_query_cache_ttl_defaults_to_five_seconds_and_rejects_a_bad_value()
    {
        Assert.Equal(TimeSpan.FromSeconds(5), AssertLoaded(LoadText("[pgbouncer]\n")).FastPool.AuthQueryCacheTtl);

        var error = AssertSingleError(LoadText("[fastpool]\nauth_query_cache_ttl = soon\n"));
        Assert.Equal(2, error.Line);
        Assert.Contains("auth_query_cache_ttl", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Database_pgbouncer_is_reserved()
    {
        var error = AssertSingleError(LoadText("[databases]\npgbouncer = host=a\n"));

        Assert.Equal("pgbouncer.ini:2: database name \"pgbouncer\" is reserved for the admin console", error.ToString());
    }

    [Fact]
    public void Database_fastpool_is_reserved_as_the_console_alias()
    {
        var error = AssertSingleError(LoadText("[databases]\nfastpool = host=a\n"));

        Assert.Equal("pgbouncer.ini:2: database name \"fastpool\" is reserved for the admin console", error.ToString());
    }

    [Fact]
    public void Later_definition_of_a_database_wins_with_a_warning()
    {
        var result = LoadText("[databases]\napp = host=a\nother = host=o\napp = host=b\n");

        var config = AssertLoaded(result);
        Assert.Equal(["app", "other"], config.Databases.Select(d => d.Name));
        Assert.Equal("b", config.Databases[0].Nodes[0].Host);
        Assert.Equal("pgbouncer.ini:4", config.Databases[0].Origin);
        Assert.Equal("pgbouncer.ini:4: database \"app\" is defined again; this definition replaces the one at pgbouncer.ini:2", Assert.Single(result.Warnings).ToString());
    }

    // ---- [users] -------------------------------------------------------------------------------

    [Fact]
    public void Users_section_is_read()
    {
        var result = LoadText("[users]\nalice = pool_mode=statement pool_size=4 max_user_connections=8\nbob = pool_mode=transaction\ncarol =\n");

        var config = AssertLoaded(result);
        Assert.Equal(3, config.Users.Count);
        var alice = config.Users["alice"];
        Assert.Equal("alice", alice.Name);
        Assert.Equal(PoolMode.Statement, alice.PoolMode);
        Assert.Equal(4, alice.PoolSize);
        Assert.Equal(8, alice.MaxUserConnections);
        var bob = config.Users["bob"];
        Assert.Equal(PoolMode.Transaction, bob.PoolMode);
        Assert.Null(bob.PoolSize);
        Assert.Null(bob.MaxUserConnections);
        Assert.Null(config.Users["carol"].PoolMode);
    }

    [Fact]
    public void Users_unknown_parameter_warns_known_ones_are_silent()
    {
        var result = LoadText("[users]\nalice = pool_size=4 reserve_pool_size=1 max_user_client_connections=9 colour=blue\n");

        var config = AssertLoaded(result);
        Assert.Equal(4, config.Users["alice"].PoolSize);
        Assert.Equal("pgbouncer.ini:2: unknown parameter \"colour\" for user \"alice\"; ignored", Assert.Single(result.Warnings).ToString());
        Assert.Equal(2, result.Notes.Count);
    }

    [Fact]
    public void AuthTypeAny_warns_about_entries_without_user()
    {
        var result = LoadText("[databases]\napp = host=db user=app\nother = host=db\n* = host=db\n[pgbouncer]\nauth_type = any\n");

        AssertLoaded(result);
        Assert.Equal("pgbouncer.ini:6: auth_type = any logs clients in as the database entry's user=, which \"other\", \"*\" lack; their clients will be refused",
            Assert.Single(result.Warnings).ToString());
    }

    [Fact]
    public void Users_invalid_pool_mode_is_an_error()
    {
        var error = AssertSingleError(LoadText("[users]\nalice = pool_mode=always\n"));

        Assert.Equal("pgbouncer.ini:2: invalid value \"always\" for pool_mode for user \"alice\"; accepted: session, transaction, statement", error.ToString());
    }

    // ---- %include ------------------------------------------------------------------------------

    [Fact]
    public void Include_files_are_read_relative_to_the_including_file()
    {
        using var dir = new TempDirectory();
        dir.Write("conf.d/databases.ini", "[databases]\nincluded = host=inc\n%include ../more.ini\n");
        dir.Write("more.ini", "[pgbouncer]\nmax_client_conn = 321\n");
        var main = dir.Write("pgbouncer.ini", "[pgbouncer]\nlisten_port = 7000\nmax_client_conn = 5\n%include conf.d/databases.ini\npool_mode = statement\n");

        var config = AssertLoaded(ConfigLoader.Load(main));

        Assert.Equal(7000, config.ListenPort);
        Assert.Equal(321, config.MaxClientConn);
        Assert.Equal(PoolMode.Statement, config.PoolMode);
        var db = Assert.Single(config.Databases);
        Assert.Equal("included", db.Name);
        Assert.Equal($"{Path.Combine(dir.Path, "conf.d", "databases.ini")}:2", db.Origin);
    }

    [Fact]
    public void Include_via_load_from_text_resolves_against_base_directory()
    {
        using var dir = new TempDirectory();
        dir.Write("extra.ini", "default_pool_size = 77\n");

        var config = AssertLoaded(LoadText("[pgbouncer]\n%include extra.ini\n", dir.Path));

        Assert.Equal(77, config.DefaultPoolSize);
    }

    [Fact]
    public void Include_cycle_is_an_error()
    {
        using var dir = new TempDirectory();
        dir.Write("a.ini", "%include b.ini\n");
        dir.Write("b.ini", "%include a.ini\n");

        var result = LoadText("[pgbouncer]\n%include a.ini\n", dir.Path);

        var error = AssertSingleError(result);
        Assert.Equal(Path.Combine(dir.Path, "b.ini"), error.File);
        Assert.Equal(1, error.Line);
        Assert.StartsWith("%include cycle: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_include_is_an_error()
    {
        using var dir = new TempDirectory();

        var error = AssertSingleError(LoadText("[pgbouncer]\n\n%include missing.ini\n", dir.Path));

        Assert.Equal(("pgbouncer.ini", 3), (error.File, error.Line));
        Assert.Contains("missing.ini", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Repeated_pgbouncer_section_merges_and_warns_about_the_difference()
    {
        var result = LoadText("[pgbouncer]\nlisten_port = 7001\n[databases]\n[pgbouncer]\nmax_client_conn = 9\n");

        var config = AssertLoaded(result);
        Assert.Equal(7001, config.ListenPort);
        Assert.Equal(9, config.MaxClientConn);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal(4, warning.Line);
        Assert.Contains("first at pgbouncer.ini:1", warning.Message, StringComparison.Ordinal);
    }

    // ---- unknown and known-but-ignored keys ----------------------------------------------------

    [Fact]
    public void Unknown_key_warns_with_file_line_and_key_and_is_ignored()
    {
        var result = LoadText("[pgbouncer]\nlisten_port = 6000\nlisten_prot = 7000\n");

        var config = AssertLoaded(result);
        Assert.Equal(6000, config.ListenPort);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal("pgbouncer.ini", warning.File);
        Assert.Equal(3, warning.Line);
        Assert.Equal("listen_prot", warning.Key);
        Assert.Equal("pgbouncer.ini:3: unknown setting \"listen_prot\" in [pgbouncer]; ignored", warning.ToString());
    }

    [Theory]
    [InlineData("tcp_keepalive = 1")]
    [InlineData("tcp_keepidle = 600")]
    [InlineData("tcp_keepintvl = 30")]
    [InlineData("tcp_keepcnt = 5")]
    [InlineData("tcp_user_timeout = 0")]
    [InlineData("tcp_defer_accept = 45")]
    [InlineData("tcp_socket_buffer = 0")]
    [InlineData("syslog = 1")]
    [InlineData("syslog_facility = daemon")]
    [InlineData("dns_max_ttl = 15")]
    [InlineData("dns_nxdomain_ttl = 15")]
    [InlineData("user = postgres")]
    [InlineData("max_user_client_connections = 0")]
    [InlineData("track_extra_parameters = IntervalStyle")]
    [InlineData("server_round_robin = 1")]
    [InlineData("disable_pqexec = 0")]
    [InlineData("resolv_conf = /etc/resolv.conf")]
    [InlineData("peer_id = 1")]
    [InlineData("listen_backlog = 128")]
    [InlineData("unix_socket_group = postgres")]
    [InlineData("autodb_idle_timeout = 3600")]
    [InlineData("server_fast_close = 0")]
    [InlineData("max_db_client_connections = 0")]
    [InlineData("scram_iterations = 4096")]
    [InlineData("conffile = /etc/pgbouncer/pgbouncer.ini")]
    public void Known_pgbouncer_keys_are_accepted_silently(string line)
    {
        var result = LoadText($"[pgbouncer]\n{line}\n");

        AssertLoaded(result);
        Assert.Empty(result.Warnings);
        var note = Assert.Single(result.Notes);
        Assert.Equal(2, note.Line);
    }

    [Fact]
    public void Peers_section_is_known()
    {
        var result = LoadText("[peers]\n1 = host=/tmp/pgbouncer1\n");

        AssertLoaded(result);
        Assert.Empty(result.Warnings);
        Assert.Single(result.Notes);
    }

    [Fact]
    public void Unknown_section_warns_once_and_its_keys_are_ignored()
    {
        var result = LoadText("[pgbouncer]\nlisten_port = 7000\n[extras]\nfoo = 1\nbar = 2\n[Extras]\nbaz = 3\n");

        var config = AssertLoaded(result);
        Assert.Equal(7000, config.ListenPort);
        Assert.Equal("pgbouncer.ini:3: unknown section [extras]; its settings are ignored", Assert.Single(result.Warnings).ToString());
    }

    [Fact]
    public void Keys_and_section_names_are_case_insensitive()
    {
        var config = AssertLoaded(LoadText("[PgBouncer]\nListen_Port = 7100\nPOOL_MODE = Transaction\n[DATABASES]\nApp = host=x\n"));

        Assert.Equal(7100, config.ListenPort);
        Assert.Equal(PoolMode.Transaction, config.PoolMode);
        Assert.Equal("App", Assert.Single(config.Databases).Name);
    }

    [Fact]
    public void Setting_before_any_section_is_an_error()
    {
        var error = AssertSingleError(LoadText("listen_port = 7000\n[pgbouncer]\n"));

        Assert.Equal("pgbouncer.ini:1: setting \"listen_port\" appears before any [section] header", error.ToString());
    }

    [Fact]
    public void Syntax_error_is_reported_and_prevents_a_config()
    {
        var error = AssertSingleError(LoadText("[pgbouncer]\nlisten_port 7000\n"));

        Assert.Equal(2, error.Line);
        Assert.StartsWith("syntax error", error.Message, StringComparison.Ordinal);
    }

    // ---- [pgbouncer] values --------------------------------------------------------------------

    [Fact]
    public void Invalid_pool_mode_error_lists_accepted_values()
    {
        var result = LoadText("[databases]\n[pgbouncer]\npool_mode = sometimes\n");

        var error = AssertSingleError(result);
        Assert.Equal("pgbouncer.ini", error.File);
        Assert.Equal(3, error.Line);
        Assert.Equal("pool_mode", error.Key);
        Assert.Equal("invalid value \"sometimes\" for pool_mode; accepted: session, transaction, statement", error.Message);
        Assert.Equal("pgbouncer.ini:3: invalid value \"sometimes\" for pool_mode; accepted: session, transaction, statement", error.ToString());
    }

    [Theory]
    [InlineData("listen_port = abc", "invalid value \"abc\" for listen_port; accepted: an integer from 1 to 65535")]
    [InlineData("listen_port = 70000", "invalid value \"70000\" for listen_port; accepted: an integer from 1 to 65535")]
    [InlineData("max_client_conn = -1", "invalid value \"-1\" for max_client_conn; accepted: an integer >= 0")]
    [InlineData("default_pool_size = 20x", "invalid value \"20x\" for default_pool_size; accepted: an integer >= 0")]
    [InlineData("log_connections = maybe", "invalid value \"maybe\" for log_connections; accepted: 1, 0, on, off, true, false, yes, no")]
    [InlineData("server_reset_query_always = sometimes", "invalid value \"sometimes\" for server_reset_query_always; accepted: 1, 0, on, off, true, false, yes, no")]
    [InlineData("server_lifetime = -5", "invalid value \"-5\" for server_lifetime; accepted: a number of seconds (e.g. 30 or 0.5), optionally with a unit: us, ms, s, min, h, d")]
    [InlineData("query_timeout = 5 fortnights", "invalid value \"5 fortnights\" for query_timeout; accepted: a number of seconds (e.g. 30 or 0.5), optionally with a unit: us, ms, s, min, h, d")]
    [InlineData("client_idle_timeout =", "invalid value \"\" for client_idle_timeout; accepted: a number of seconds (e.g. 30 or 0.5), optionally with a unit: us, ms, s, min, h, d")]
    [InlineData("auth_type = kerberos", "invalid value \"kerberos\" for auth_type; accepted: trust, any, plain, md5, scram-sha-256, cert, hba")]
    [InlineData("auth_type = pam", "auth_type \"pam\" is not supported by FastPool; accepted: trust, any, plain, md5, scram-sha-256, cert, hba")]
    [InlineData("unix_socket_mode = 0999", "invalid value \"0999\" for unix_socket_mode; accepted: an octal file mode from 0 to 07777, e.g. 0777")]
    [InlineData("pkt_buf = 0", "invalid value \"0\" for pkt_buf; accepted: an integer >= 1")]
    [InlineData("verbose = loud", "invalid value \"loud\" for verbose; accepted: an integer >= 0")]
    public void Invalid_values_are_errors_naming_file_line_key_and_accepted_values(string line, string expected)
    {
        var result = LoadText($"[pgbouncer]\nlisten_addr = *\n{line}\n");

        var error = AssertSingleError(result);
        Assert.Equal($"pgbouncer.ini:3: {expected}", error.ToString());
        Assert.Equal(line.Split('=')[0].Trim(), error.Key);
    }

    [Fact]
    public void All_errors_are_reported_not_just_the_first()
    {
        var result = LoadText("[pgbouncer]\nlisten_port = x\npool_mode = y\n[databases]\ndb = port=z\n");

        Assert.Null(result.Config);
        Assert.Equal([2, 3, 5], result.Errors.Select(e => e.Line));
    }

    [Fact]
    public void Every_supported_pgbouncer_key_is_mapped()
    {
        using var dir = new TempDirectory();
        dir.Write("users.txt", "\"u\" \"p\"\n");
        dir.Write("pg_hba.conf", "local all all trust\n");
        var result = LoadText("""
            [pgbouncer]
            listen_addr = 127.0.0.1, ::1
            listen_port = 6543
            unix_socket_dir = /run/fastpool
            unix_socket_mode = 0700
            auth_type = hba
            auth_file = users.txt
            auth_hba_file = pg_hba.conf
            auth_user = pgbouncer_auth
            auth_query = SELECT usename, passwd FROM user_lookup($1)
            admin_users = a1,a2
            stats_users = s1
            pool_mode = statement
            max_client_conn = 2000
            default_pool_size = 11
            min_pool_size = 3
            reserve_pool_size = 4
            reserve_pool_timeout = 2.5
            max_db_connections = 90
            max_user_connections = 80
            server_reset_query = DEALLOCATE ALL
            server_reset_query_always = yes
            server_check_query = SELECT 2
            server_check_delay = 10
            server_lifetime = 1h
            server_idle_timeout = 5min
            server_connect_timeout = 3
            server_login_retry = 250ms
            query_wait_timeout = 0
            query_timeout = 600
            client_login_timeout = 20
            client_idle_timeout = 1d
            idle_transaction_timeout = 90
            max_packet_size = 1048576
            pkt_buf = 8192
            ignore_startup_parameters = extra_float_digits,search_path
            application_name_add_host = 1
            logfile = /var/log/fastpool.log
            pidfile = /run/fastpool.pid
            log_connections = off
            log_disconnections = false
            log_pooler_errors = no
            log_stats = 0
            stats_period = 15
            verbose = 2
            shutdown_wait_timeout = 30
            """, dir.Path);

        var config = AssertLoaded(result);
        Assert.Empty(result.Warnings);
        Assert.Empty(result.Notes);
        Assert.Equal(["127.0.0.1", "::1"], config.ListenAddresses);
        Assert.Equal(6543, config.ListenPort);
        Assert.Equal("/run/fastpool", config.UnixSocketDir);
        Assert.Equal(448, config.UnixSocketMode);
        Assert.Equal(AuthType.Hba, config.AuthType);
        Assert.Equal(Path.Combine(dir.Path, "users.txt"), config.AuthFile);
        Assert.Equal("p", config.AuthFileUsers["u"]);
        Assert.Equal(Path.Combine(dir.Path, "pg_hba.conf"), config.AuthHbaFile);
        Assert.Equal(HbaMethod.Trust, Assert.Single(config.HbaRules!.Rules).Method);
        Assert.Equal("pgbouncer_auth", config.AuthUser);
        Assert.Equal("SELECT usename, passwd FROM user_lookup($1)", config.AuthQuery);
        Assert.Equal(["a1", "a2"], config.AdminUsers);
        Assert.Equal(["s1"], config.StatsUsers);
        Assert.Equal(PoolMode.Statement, config.PoolMode);
        Assert.Equal(2000, config.MaxClientConn);
        Assert.Equal(11, config.DefaultPoolSize);
        Assert.Equal(3, config.MinPoolSize);
        Assert.Equal(4, config.ReservePoolSize);
        Assert.Equal(TimeSpan.FromSeconds(2.5), config.ReservePoolTimeout);
        Assert.Equal(90, config.MaxDbConnections);
        Assert.Equal(80, config.MaxUserConnections);
        Assert.Equal("DEALLOCATE ALL", config.ServerResetQuery);
        Assert.True(config.ServerResetQueryAlways);
        Assert.Equal("SELECT 2", config.ServerCheckQuery);
        Assert.Equal(TimeSpan.FromSeconds(10), config.ServerCheckDelay);
        Assert.Equal(TimeSpan.FromHours(1), config.ServerLifetime);
        Assert.Equal(TimeSpan.FromMinutes(5), config.ServerIdleTimeout);
        Assert.Equal(TimeSpan.FromSeconds(3), config.ServerConnectTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(250), config.ServerLoginRetry);
        Assert.Equal(TimeSpan.Zero, config.QueryWaitTimeout);
        Assert.Equal(TimeSpan.FromSeconds(600), config.QueryTimeout);
        Assert.Equal(TimeSpan.FromSeconds(20), config.ClientLoginTimeout);
        Assert.Equal(TimeSpan.FromDays(1), config.ClientIdleTimeout);
        Assert.Equal(TimeSpan.FromSeconds(90), config.IdleTransactionTimeout);
        Assert.Equal(1048576, config.MaxPacketSize);
        Assert.Equal(8192, config.PktBuf);
        Assert.Equal(["extra_float_digits", "search_path"], config.IgnoreStartupParameters);
        Assert.True(config.ApplicationNameAddHost);
        Assert.Equal("/var/log/fastpool.log", config.LogFile);
        Assert.Equal("/run/fastpool.pid", config.PidFile);
        Assert.False(config.LogConnections);
        Assert.False(config.LogDisconnections);
        Assert.False(config.LogPoolerErrors);
        Assert.False(config.LogStats);
        Assert.Equal(TimeSpan.FromSeconds(15), config.StatsPeriod);
        Assert.Equal(2, config.Verbose);
        Assert.Equal(TimeSpan.FromSeconds(30), config.ShutdownWaitTimeout);
    }

    [Theory]
    [InlineData("0.5", 500)]
    [InlineData("30", 30_000)]
    [InlineData("0", 0)]
    [InlineData("1.5min", 90_000)]
    [InlineData("100ms", 100)]
    public void Time_values_accept_fractional_seconds_and_units(string text, int expectedMilliseconds)
    {
        var config = AssertLoaded(LoadText($"[pgbouncer]\nquery_wait_timeout = {text}\n"));

        Assert.Equal(TimeSpan.FromMilliseconds(expectedMilliseconds), config.QueryWaitTimeout);
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("0", false)]
    [InlineData("on", true)]
    [InlineData("off", false)]
    [InlineData("TRUE", true)]
    [InlineData("false", false)]
    [InlineData("Yes", true)]
    [InlineData("no", false)]
    public void Booleans_accept_the_usual_spellings(string text, bool expected)
    {
        var config = AssertLoaded(LoadText($"[pgbouncer]\nlog_stats = {text}\napplication_name_add_host = {text}\n"));

        Assert.Equal(expected, config.LogStats);
        Assert.Equal(expected, config.ApplicationNameAddHost);
    }

    [Fact]
    public void Integers_are_read_like_pgbouncer_including_hex_and_octal()
    {
        var config = AssertLoaded(LoadText("[pgbouncer]\ndefault_pool_size = 0x10\nmax_client_conn = 010\n"));

        Assert.Equal(16, config.DefaultPoolSize);
        Assert.Equal(8, config.MaxClientConn);
    }

    [Theory]
    [InlineData("*", new[] { "*" })]
    [InlineData("127.0.0.1", new[] { "127.0.0.1" })]
    [InlineData(" 10.0.0.1 ,, ::1 ", new[] { "10.0.0.1", "::1" })]
    [InlineData("", new string[0])]
    public void Listen_addr_is_a_comma_list(string text, string[] expected)
    {
        var config = AssertLoaded(LoadText($"[pgbouncer]\nlisten_addr = {text}\n"));

        Assert.Equal(expected, config.ListenAddresses);
    }

    [Fact]
    public void Empty_unix_socket_dir_disables_unix_sockets()
    {
        var config = AssertLoaded(LoadText("[pgbouncer]\nunix_socket_dir =\n"));

        Assert.Equal("", config.UnixSocketDir);
    }

    [Fact]
    public void Max_packet_size_above_int_range_is_clamped()
    {
        var config = AssertLoaded(LoadText("[pgbouncer]\nmax_packet_size = 4294967295\n"));

        Assert.Equal(int.MaxValue, config.MaxPacketSize);
    }

    [Fact]
    public void Semicolon_after_a_value_is_not_a_comment()
    {
        var config = AssertLoaded(LoadText("[pgbouncer]\nserver_reset_query = DISCARD ALL; -- reset\n"));

        Assert.Equal("DISCARD ALL; -- reset", config.ServerResetQuery);
    }

    [Fact]
    public void Crlf_files_load()
    {
        var config = AssertLoaded(LoadText("[databases]\r\napp = host=a port=5\r\n[pgbouncer]\r\nlisten_port = 7777\r\n"));

        Assert.Equal(7777, config.ListenPort);
        Assert.Equal([new NodeEndpoint("a", 5)], Assert.Single(config.Databases).Nodes);
    }

    [Fact]
    public void Later_value_of_a_key_wins()
    {
        var config = AssertLoaded(LoadText("[pgbouncer]\nlisten_port = 1000\nlisten_port = 2000\n"));

        Assert.Equal(2000, config.ListenPort);
    }

    // ---- files ---------------------------------------------------------------------------------

    [Fact]
    public void Missing_config_file_is_a_clear_error()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "pgbouncer.ini");

        var result = ConfigLoader.Load(path);

        var error = AssertSingleError(result);
        Assert.Equal(path, error.File);
        Assert.Equal(0, error.Line);
        Assert.Equal($"{path}:0: cannot read config file \"{path}\": no such file", error.ToString());
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public void Auth_file_is_read_relative_to_the_config_file()
    {
        using var dir = new TempDirectory();
        dir.Write("etc/userlist.txt", "\"alice\" \"md5abc\"\n\"bob\" \"SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVkLWtleS1zdG9yZWQta2V5LXN0b3JlZC1rZXk=:c2VydmVyLWtleS1zZXJ2ZXIta2V5LXNlcnZlci1rZXk=\"\n");
        var path = dir.Write("etc/pgbouncer.ini", "[pgbouncer]\nauth_file = userlist.txt\n");

        var config = AssertLoaded(ConfigLoader.Load(path));

        Assert.Equal(Path.Combine(dir.Path, "etc", "userlist.txt"), config.AuthFile);
        Assert.Equal("md5abc", config.AuthFileUsers["alice"]);
        Assert.Equal("SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVkLWtleS1zdG9yZWQta2V5LXN0b3JlZC1rZXk=:c2VydmVyLWtleS1zZXJ2ZXIta2V5LXNlcnZlci1rZXk=", config.AuthFileUsers["bob"]);
    }

    [Fact]
    public void Missing_auth_file_is_an_error_naming_the_path()
    {
        using var dir = new TempDirectory();
        var expectedPath = Path.Combine(dir.Path, "nope.txt");

        var result = LoadText("[pgbouncer]\nauth_type = md5\nauth_file = nope.txt\n", dir.Path);

        var error = AssertSingleError(result);
        Assert.Equal($"pgbouncer.ini:3: cannot read auth_file \"{expectedPath}\": no such file", error.ToString());
        Assert.Equal("auth_file", error.Key);
    }

    [Fact]
    public void Malformed_auth_file_line_is_an_error_in_the_auth_file()
    {
        using var dir = new TempDirectory();
        var authFile = dir.Write("userlist.txt", "\"alice\" \"ok\"\nbob secret\n");

        var error = AssertSingleError(LoadText("[pgbouncer]\nauth_file = userlist.txt\n", dir.Path));

        Assert.Equal(authFile, error.File);
        Assert.Equal(2, error.Line);
    }

    [Fact]
    public void Empty_auth_file_setting_means_none()
    {
        var config = AssertLoaded(LoadText("[pgbouncer]\nauth_file =\n"));

        Assert.Null(config.AuthFile);
        Assert.Empty(config.AuthFileUsers);
    }

    // ---- [fastpool] ----------------------------------------------------------------------------

    [Fact]
    public void Fastpool_section_sets_workers_and_keeps_raw_keys()
    {
        var result = LoadText("[fastpool]\nWorkers = 4\nmetrics_port = 9187\nSome_Future_Key = Mixed Case Value\n");

        var config = AssertLoaded(result);
        Assert.Empty(result.Warnings);
        Assert.Equal(4, config.FastPool.Workers);
        Assert.Equal("4", config.FastPool.Raw["workers"]);
        Assert.Equal("9187", config.FastPool.Raw["metrics_port"]);
        Assert.Equal("Mixed Case Value", config.FastPool.Raw["some_future_key"]);
        Assert.Equal(3, config.FastPool.Raw.Count);
    }

    [Fact]
    public void Fastpool_pin_settings_default_on_and_turn_off_one_by_one()
    {
        Assert.Equal(PinReasons.All, AssertLoaded(LoadText("[fastpool]\n")).FastPool.Pins);

        var config = AssertLoaded(LoadText("[fastpool]\npin_listen = 0\npin_temp_tables = off\npin_prepare = yes\n"));

        Assert.Equal(PinReasons.All & ~(PinReasons.Listen | PinReasons.TempTables), config.FastPool.Pins);
    }

    [Fact]
    public void Max_prepared_statements_defaults_to_200_and_0_turns_it_off()
    {
        Assert.Equal(200, AssertLoaded(LoadText("[pgbouncer]\n")).MaxPreparedStatements);
        Assert.Equal(0, AssertLoaded(LoadText("[pgbouncer]\nmax_prepared_statements = 0\n")).MaxPreparedStatements);
        Assert.Equal(2, AssertLoaded(LoadText("[pgbouncer]\nmax_prepared_statements = 2\n")).MaxPreparedStatements);
        Assert.Contains("max_prepared_statements", AssertSingleError(LoadText("[pgbouncer]\nmax_prepared_statements = -1\n")).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Fastpool_workers_must_be_a_count()
    {
        var error = AssertSingleError(LoadText("[fastpool]\nworkers = many\n"));

        Assert.Equal("pgbouncer.ini:2: invalid value \"many\" for workers; accepted: an integer from 0 to 4096", error.ToString());
    }

    [Theory]
    [InlineData("auto", FastPool.Proxy.Transport.TransportKind.Auto)]
    [InlineData("EPOLL", FastPool.Proxy.Transport.TransportKind.Epoll)]
    [InlineData("sockets", FastPool.Proxy.Transport.TransportKind.Sockets)]
    [InlineData("io_uring", FastPool.Proxy.Transport.TransportKind.IoUring)]
    public void Fastpool_transport_and_io_threads(string value, FastPool.Proxy.Transport.TransportKind expected)
    {
        var config = AssertLoaded(LoadText($"[fastpool]\ntransport = {value}\nio_threads = 3\n"));

        Assert.Equal(expected, config.FastPool.Transport);
        Assert.Equal(3, config.FastPool.IoThreads);
    }

    [Fact]
    public void Fastpool_sr_check_settings()
    {
        var config = AssertLoaded(LoadText("[fastpool]\nsr_check_period = 2500ms\nsr_check_user = monitor\nsr_check_password = pw\nsr_check_database = appdb\n"));

        Assert.Equal(TimeSpan.FromMilliseconds(2500), config.FastPool.SrCheckPeriod);
        Assert.Equal("monitor", config.FastPool.SrCheckUser);
        Assert.Equal("pw", config.FastPool.SrCheckPassword);
        Assert.Equal("appdb", config.FastPool.SrCheckDatabase);
        Assert.Equal(TimeSpan.FromSeconds(10), AssertLoaded(LoadText("[pgbouncer]\n")).FastPool.SrCheckPeriod);
    }

    [Fact]
    public void Fastpool_transport_must_be_one_of_the_known_ones()
    {
        var error = AssertSingleError(LoadText("[fastpool]\ntransport = io_uring_please\n"));

        Assert.Equal("pgbouncer.ini:2: transport \"io_uring_please\" is not valid; accepted: auto, epoll, io_uring, sockets", error.ToString());
    }

    [Fact]
    public void Fastpool_defaults_when_section_is_absent()
    {
        var config = AssertLoaded(LoadText("[pgbouncer]\n"));

        Assert.Equal(FastPool.Proxy.Transport.TransportKind.Auto, config.FastPool.Transport);
        Assert.Equal(0, config.FastPool.Workers);
        Assert.Empty(config.FastPool.Raw);
    }

    [Fact]
    public void Diagnostic_to_string_is_file_line_message()
    {
        var diagnostic = new ConfigDiagnostic("/etc/pgbouncer/pgbouncer.ini", 12, "pool_mode", "bad");

        Assert.Equal("/etc/pgbouncer/pgbouncer.ini:12: bad", diagnostic.ToString());
    }

    // ---- auth_type = hba ------------------------------------------------------------------------

    [Fact]
    public void Hba_file_is_read_for_auth_type_hba_relative_to_the_config()
    {
        using var dir = new TempDirectory();
        dir.Write("etc/hba.conf", "host appdb all 127.0.0.1/32 scram-sha-256\nlocal all all peer\n");
        var path = dir.Write("etc/pgbouncer.ini", "[pgbouncer]\nauth_type = hba\nauth_hba_file = hba.conf\n");

        var config = AssertLoaded(ConfigLoader.Load(path));

        Assert.Equal([HbaMethod.ScramSha256, HbaMethod.Peer], config.HbaRules!.Rules.Select(r => r.Method));
    }

    [Fact]
    public void Auth_type_hba_without_auth_hba_file_stops_startup()
    {
        using var dir = new TempDirectory();
        var result = LoadText("[pgbouncer]\nlisten_port = 1\nauth_type = hba\n", dir.Path);

        var error = AssertSingleError(result);
        Assert.Equal(3, error.Line);
        Assert.Equal("auth_type", error.Key);
        Assert.Contains("auth_type = hba needs auth_hba_file", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_hba_line_stops_startup_with_its_file_and_line()
    {
        using var dir = new TempDirectory();
        var hba = dir.Write("hba.conf", "local all all trust\nhost all all 10.0.0.0/8 ldap\n");
        var result = LoadText("[pgbouncer]\nauth_type = hba\nauth_hba_file = hba.conf\n", dir.Path);

        var error = AssertSingleError(result);
        Assert.Equal(hba, error.File);
        Assert.Equal(2, error.Line);
        Assert.Equal("auth_hba_file", error.Key);
        Assert.Contains("invalid authentication method \"ldap\"; accepted: trust, reject, md5, password, scram-sha-256, peer (local only)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unreadable_hba_file_stops_startup()
    {
        using var dir = new TempDirectory();
        var result = LoadText("[pgbouncer]\nauth_type = hba\nauth_hba_file = missing.conf\n", dir.Path);

        var error = AssertSingleError(result);
        Assert.Equal(3, error.Line);
        Assert.Contains("cannot read auth_hba_file", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hba_file_is_ignored_unless_auth_type_is_hba()
    {
        using var dir = new TempDirectory();
        var config = AssertLoaded(LoadText("[pgbouncer]\nauth_type = md5\nauth_hba_file = missing.conf\n", dir.Path));

        Assert.Null(config.HbaRules);
    }

    [Fact]
    public void Tls_keys_are_parsed_with_pgbouncer_values()
    {
        var config = AssertLoaded(LoadText(
            "[pgbouncer]\nserver_tls_sslmode = verify-full\nserver_tls_protocols = tlsv1.3\n"
            + "client_tls_ciphers = TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384\n"));

        Assert.Equal(TlsMode.VerifyFull, config.ServerTls.Mode);
        Assert.Null(config.ServerTls.CaFile); // verify-full without a CA file: the system roots
        Assert.Equal(System.Security.Authentication.SslProtocols.Tls13, config.ServerTls.Protocols);
        Assert.Equal([System.Net.Security.TlsCipherSuite.TLS_AES_128_GCM_SHA256, System.Net.Security.TlsCipherSuite.TLS_AES_256_GCM_SHA384], config.ClientTls.CipherSuites);
        Assert.Equal(TlsMode.Disable, config.ClientTls.Mode);
    }

    [Fact]
    public void Tls13_ciphers_are_added_to_the_tls12_list_as_openssl_keeps_them_apart()
    {
        var config = AssertLoaded(LoadText(
            "[pgbouncer]\nclient_tls_ciphers = TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:TLS_DHE_RSA_WITH_AES_128_GCM_SHA256\n"
            + "client_tls13_ciphers = TLS_CHACHA20_POLY1305_SHA256\nclient_tls_dheparams = none\nserver_tls13_ciphers = TLS_AES_128_GCM_SHA256\n"));

        Assert.Equal([TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256], config.ClientTls.Tls13CipherSuites);
        Assert.True(config.ClientTls.NoDhe);

        // dheparams = none takes the DHE suite out; the TLS 1.3 list comes first.
        Assert.Equal([TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], config.ClientTls.EffectiveCipherSuites());

        // Only the TLS 1.3 suites chosen: the TLS 1.2 suites are the secure ECDHE defaults, not "none".
        var server = config.ServerTls.EffectiveCipherSuites()!;
        Assert.Equal(TlsCipherSuite.TLS_AES_128_GCM_SHA256, server[0]);
        Assert.Equal(TlsValues.DefaultTls12Suites, server.Skip(1));

        // A tls_ciphers list without TLS 1.3 suites leaves TLS 1.3 at its defaults (OpenSSL's split).
        var only12 = new TlsSettings { CipherSuites = [TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256] }.EffectiveCipherSuites()!;
        Assert.Equal([.. TlsValues.DefaultTls13Suites, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], only12);

        // Nothing chosen: the library's defaults.
        Assert.Null(new TlsSettings().EffectiveCipherSuites());
    }

    [Theory]
    [InlineData("client_tls_ecdhcurve = prime256v1", "client_tls_ecdhcurve = prime256v1 cannot be applied")]
    [InlineData("client_tls_dheparams = /etc/ssl/dh.pem", "client_tls_dheparams = /etc/ssl/dh.pem cannot be applied")]
    public void Tls_keys_dotnet_cannot_apply_are_warned_about(string line, string message)
    {
        var result = LoadText($"[pgbouncer]\n{line}\n");

        AssertLoaded(result);
        Assert.Contains(result.Warnings, w => w.Message.Contains(message, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("client_tls_ecdhcurve = auto")]
    [InlineData("client_tls_dheparams = auto")]
    public void Tls_key_defaults_are_accepted_silently(string line)
    {
        var result = LoadText($"[pgbouncer]\n{line}\n");

        AssertLoaded(result);
        Assert.Empty(result.Warnings);
        Assert.Empty(result.Notes);
    }

    [Theory]
    [InlineData("client_tls13_ciphers = TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "is not a TLS 1.3 cipher suite")]
    [InlineData("client_tls_sslmode = sometimes", "invalid value \"sometimes\" for client_tls_sslmode")]
    [InlineData("client_tls_protocols = sslv3", "invalid value \"sslv3\" for client_tls_protocols")]
    [InlineData("client_tls_ciphers = HIGH:!aNULL", "OpenSSL names and expressions cannot be applied")]
    [InlineData("client_tls_ciphers = legacy", "legacy or insecure ciphers")]
    [InlineData("client_tls_sslmode = require", "client_tls_sslmode = Require needs client_tls_cert_file and client_tls_key_file")]
    [InlineData("client_tls_sslmode = require\nclient_tls_cert_file = /nonexistent/c.pem\nclient_tls_key_file = /nonexistent/k.pem", "cannot load the client_tls certificate")]
    [InlineData("auth_type = cert", "auth_type = cert needs client TLS")]
    public void Tls_misconfiguration_stops_startup(string lines, string message)
    {
        var result = LoadText("[pgbouncer]\n" + lines + "\n");
        Assert.False(result.Success);
        Assert.Contains(result.Errors, e => e.Message.Contains(message, StringComparison.Ordinal));
    }
}
