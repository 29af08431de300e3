using System.Globalization;
using System.Text;

namespace FastPool.IntegrationTests.Cli;

/// <summary>
/// A temp directory holding what an operator would put in /etc/pgbouncer (pgbouncer.ini, userlist.txt)
/// and the pidfile/logfile FastPool writes; deleted on dispose.
/// </summary>
internal sealed class CliWorkspace : IDisposable
{
    public CliWorkspace()
    {
        // Short on purpose: a unix socket path (dir + "/.s.PGSQL.NNNNN") must fit in 107 bytes.
        Directory = System.IO.Directory.CreateTempSubdirectory("fp-cli-").FullName;
    }

    public string Directory { get; }

    public string ConfigPath => Path.Combine(Directory, "pgbouncer.ini");

    public string PidFile => Path.Combine(Directory, "pgbouncer.pid");

    public string LogFile => Path.Combine(Directory, "pgbouncer.log");

    public string UserList => Path.Combine(Directory, "userlist.txt");

    /// <summary>Writes pgbouncer.ini and returns its path.</summary>
    public string WriteConfig(string text)
    {
        File.WriteAllText(ConfigPath, text.ReplaceLineEndings("\n"));
        return ConfigPath;
    }

    /// <summary>1-based line of the first line of pgbouncer.ini that starts with <paramref name="prefix"/>.</summary>
    public int LineOf(string prefix)
    {
        var lines = File.ReadAllLines(ConfigPath);
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].StartsWith(prefix, StringComparison.Ordinal))
            {
                return i + 1;
            }
        }

        throw new InvalidOperationException($"no line starting with \"{prefix}\" in {ConfigPath}");
    }

    /// <summary>
    /// A pgbouncer.ini written the way an operator keeps one (PgBouncer/Debian layout: commented-out defaults,
    /// ';;;' section banners), in front of the PostgreSQL at <paramref name="backendPort"/> (may be a dead port
    /// for tests that never reach a server). <paramref name="extraPgBouncer"/> lines go at the end of [pgbouncer].
    /// </summary>
    public string WriteOperatorConfig(int backendPort, int listenPort, string poolMode = "session", params string[] extraPgBouncer)
    {
        File.WriteAllText(UserList, "\"postgres\" \"\"\n");
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"""
            ;; database name = connect string
            ;;
            ;; connect string params:
            ;;   dbname= host= port= user= password= auth_user=
            ;;   client_encoding= datestyle= timezone=
            ;;   pool_size= reserve_pool= max_db_connections=
            ;;   pool_mode= connect_query= application_name=
            [databases]
            postgres = host=127.0.0.1 port={backendPort} dbname=postgres

            ;; fallback connect string
            ;* = host=testserver

            [pgbouncer]

            ;;;
            ;;; Administrative settings
            ;;;

            logfile = {LogFile}
            pidfile = {PidFile}

            ;;;
            ;;; Where to wait for clients
            ;;;

            ;; IP address or * which means all IPs
            listen_addr = 127.0.0.1
            listen_port = {listenPort}

            ;; Unix socket is also used for -R.
            ;; On Debian it should be /var/run/postgresql
            unix_socket_dir = {Directory}
            ;unix_socket_mode = 0777
            ;unix_socket_group =

            ;;;
            ;;; TLS settings for connecting to backend databases
            ;;;

            ;; disable, allow, require, verify-ca, verify-full
            server_tls_sslmode = prefer

            ;;;
            ;;; Authentication settings
            ;;;

            ;; any, trust, plain, md5, cert, hba, pam
            auth_type = trust
            auth_file = userlist.txt

            ;;;
            ;;; Users allowed into database 'pgbouncer'
            ;;;

            ;; comma-separated list of users who are allowed to change settings
            admin_users = postgres

            ;; comma-separated list of users who are just allowed to use SHOW command
            ;stats_users = stats, postgres

            ;;;
            ;;; Pooler personality questions
            ;;;

            ;; When server connection is released back to pool:
            ;;   session      - after client disconnects (default)
            ;;   transaction  - after transaction finishes
            ;;   statement    - after statement finishes
            pool_mode = {poolMode}

            ;server_reset_query = DISCARD ALL

            ;;;
            ;;; Connection limits
            ;;;

            ;; Total number of clients that can connect
            max_client_conn = 100

            ;; Default pool size.  20 is good number when transaction pooling
            ;; is in use, in session pooling it needs to be the number of
            ;; max clients you want to handle at any moment
            default_pool_size = 20

            ;;;
            ;;; Logging
            ;;;

            ;syslog = 0
            ;syslog_facility = daemon
            ;syslog_ident = pgbouncer

            ;;;
            ;;; Timeouts
            ;;;

            ;server_lifetime = 3600
            ;server_idle_timeout = 600

            ;;;
            ;;; Low-level tuning options
            ;;;

            ;; TCP keepalive
            tcp_keepalive = 1
            ;tcp_keepidle = 0
            ;tcp_keepintvl = 0

            """);
        sb.Append('\n');
        foreach (var line in extraPgBouncer)
        {
            sb.Append(line).Append('\n');
        }

        return WriteConfig(sb.ToString());
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
