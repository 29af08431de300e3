using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace FastPool.Sandbox;

/// <summary>Knobs for <see cref="PgCluster.StartPrimaryAsync"/>; every property has a sandbox-friendly default.</summary>
internal sealed class PgClusterOptions
{
    /// <summary>max_connections of the server. Pooler tests open many sessions, hence more than PostgreSQL's 100.</summary>
    public int MaxConnections { get; init; } = 200;

    /// <summary>
    /// Extra postgresql.conf settings, appended after ours (so they win). Values are written verbatim:
    /// quote string values yourself, e.g. <c>["log_statement"] = "'all'"</c>.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Settings { get; init; }

    /// <summary>
    /// pg_hba.conf lines put in front of the default (all-trust) rules; the first matching line wins,
    /// so this is how a test makes one role require e.g. scram-sha-256.
    /// </summary>
    public IReadOnlyList<string>? ExtraHbaEntries { get; init; }

    /// <summary>Overrides bin directory discovery (pg_config --bindir).</summary>
    public string? BinDirectory { get; init; }

    /// <summary>How long pg_ctl may wait for a server to accept connections.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(90);
}

/// <summary>
/// A throwaway PostgreSQL server (primary or streaming standby) living in a directory we own.
/// Used by <c>fastpool --sandbox</c> and by the integration tests. A primary owns its base directory:
/// disposing it stops its standbys and itself and deletes the directory.
/// </summary>
internal sealed class PgCluster : IAsyncDisposable
{
    /// <summary>Address every sandbox server listens on; nothing is ever exposed beyond loopback.</summary>
    public const string LoopbackHost = "127.0.0.1";

    /// <summary>Superuser created by initdb (-U postgres).</summary>
    public const string Superuser = "postgres";

    private const string PrimaryRole = "primary";
    private const string StandbyRole = "standby";
    private const int MaxPortAttempts = 3;

    // A unix socket path is limited to 108 bytes (sun_path) including ".s.PGSQL.NNNNN" and the NUL.
    private const int MaxSocketDirectoryLength = 107 - 16;

    private static readonly TimeSpan _replicationTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan _stopTimeout = TimeSpan.FromSeconds(60);

    private readonly PgCluster? _primary;
    private readonly List<PgCluster> _standbys = [];
    private readonly PgClusterOptions _options;

    // Serialises start/stop/kill/dispose of this one server; they all mutate the process state.
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private int _standbyCounter;
    private volatile bool _running;
    private volatile bool _disposed;

    private PgCluster(
        PgCluster? primary,
        string name,
        string baseDirectory,
        string binDirectory,
        int port,
        PgClusterOptions options)
    {
        _primary = primary;
        _options = options;
        Name = name;
        Role = primary is null ? PrimaryRole : StandbyRole;
        BaseDirectory = baseDirectory;
        BinDirectory = binDirectory;
        Port = port;
        DataDirectory = Path.Combine(baseDirectory, name);
        SocketDirectory = baseDirectory;
        LogFile = Path.Combine(baseDirectory, name + ".log");
    }

    /// <summary>Always <see cref="LoopbackHost"/>.</summary>
    public string Host => LoopbackHost;

    /// <summary>TCP port (on <see cref="Host"/>); also names the unix socket <c>.s.PGSQL.&lt;Port&gt;</c>.</summary>
    public int Port { get; private set; }

    /// <summary>"primary" or "standby".</summary>
    public string Role { get; }

    /// <summary>Unique within the base directory: "primary", "standby1", "standby2", ... Also the server's cluster_name.</summary>
    public string Name { get; }

    public string BaseDirectory { get; }

    public string DataDirectory { get; }

    /// <summary>unix_socket_directories of the server (shared by all servers of one base directory).</summary>
    public string SocketDirectory { get; }

    public string BinDirectory { get; }

    /// <summary>Server log (pg_ctl -l), handy to attach to failure messages.</summary>
    public string LogFile { get; }

    public bool IsRunning => _running;

    /// <summary>The primary this standby streams from; null on a primary.</summary>
    public PgCluster? Primary => _primary;

    /// <summary>Standbys created with <see cref="AddStandbyAsync"/> (snapshot).</summary>
    public IReadOnlyList<PgCluster> Standbys
    {
        get
        {
            lock (_standbys)
            {
                return _standbys.ToArray();
            }
        }
    }

    /// <summary>
    /// initdb + start a primary in <c>&lt;baseDirectory&gt;/primary</c>. The base directory is created if missing
    /// and is deleted (whole) when the returned cluster is disposed, so pass a directory meant to be thrown away.
    /// </summary>
    public static async Task<PgCluster> StartPrimaryAsync(string baseDirectory, PgClusterOptions? options, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(baseDirectory);
        options ??= new PgClusterOptions();
        baseDirectory = Path.GetFullPath(baseDirectory);
        if (baseDirectory.Length > MaxSocketDirectoryLength)
        {
            throw new ArgumentException(
                $"Base directory '{baseDirectory}' is too long to hold a unix socket (max {MaxSocketDirectoryLength} characters).",
                nameof(baseDirectory));
        }

        var binDirectory = options.BinDirectory ?? await FindBinDirectoryAsync(ct).ConfigureAwait(false);
        await PrepareBaseDirectoryAsync(baseDirectory, ct).ConfigureAwait(false);

        var cluster = new PgCluster(null, PrimaryRole, baseDirectory, binDirectory, FindFreePort(), options);

        // Registered before initdb so a crash anywhere below still gets the directory cleaned at exit.
        CleanupRegistry.Register(cluster);
        try
        {
            await cluster.InitDbAsync(ct).ConfigureAwait(false);
            await cluster.StartWithPortRetryAsync(ct).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// pg_basebackup a new hot standby from this primary, start it, and wait until the primary reports
    /// it as 'streaming' in pg_stat_replication. The standby is owned (and disposed) by this primary.
    /// </summary>
    public async Task<PgCluster> AddStandbyAsync(CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_primary is not null)
        {
            throw new InvalidOperationException("Cascading standbys are not supported; call AddStandbyAsync on the primary.");
        }

        if (!_running)
        {
            throw new InvalidOperationException("The primary must be running to take a base backup.");
        }

        var number = Interlocked.Increment(ref _standbyCounter);
        var standby = new PgCluster(this, StandbyRole + number.ToString(CultureInfo.InvariantCulture), BaseDirectory, BinDirectory, FindFreePort(), _options);
        lock (_standbys)
        {
            _standbys.Add(standby);
        }

        try
        {
            await RunServerToolAsync(
                "pg_basebackup",
                [
                    "-h", LoopbackHost, "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", Superuser,
                    "-D", standby.DataDirectory, "-R", "-c", "fast", "-X", "stream", "--no-sync",
                ],
                TimeSpan.FromMinutes(5),
                ct).ConfigureAwait(false);

            // postgresql.auto.conf is read after postgresql.conf, so these override the primary's copied values
            // (pg_basebackup -R has already put primary_conninfo and standby.signal in place).
            standby.AppendConfig(
                "postgresql.auto.conf",
                [
                    ("port", standby.Port.ToString(CultureInfo.InvariantCulture)),
                    ("unix_socket_directories", Literal(standby.SocketDirectory)),

                    // The walreceiver uses cluster_name as application_name, which is how we find it below.
                    ("cluster_name", Literal(standby.Name)),
                    ("hot_standby", "on"),
                ]);

            await standby.StartWithPortRetryAsync(ct).ConfigureAwait(false);
            await WaitForStreamingAsync(standby.Name, ct).ConfigureAwait(false);
            return standby;
        }
        catch
        {
            await standby.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Npgsql-style connection string over TCP. Pooling etc. are left to the caller.</summary>
    public string ConnectionString(string database = "postgres", string user = Superuser) =>
        $"Host={LoopbackHost};Port={Port.ToString(CultureInfo.InvariantCulture)};Database={QuoteConnValue(database)};Username={QuoteConnValue(user)}";

    /// <summary>
    /// Runs <c>psql -Atc sql</c> as the superuser over TCP and returns stdout without the trailing newline.
    /// Throws <see cref="ProcessRunException"/> with psql's stderr when the statement fails.
    /// </summary>
    public async Task<string> PsqlAsync(string sql, string database = "postgres", CancellationToken ct = default)
    {
        var result = await ProcessRunner.RunAsync(
            PsqlPath(),
            [
                "-X", "-v", "ON_ERROR_STOP=1", "-h", LoopbackHost, "-p", Port.ToString(CultureInfo.InvariantCulture),
                "-U", Superuser, "-d", database, "-Atc", sql,
            ],
            TimeSpan.FromMinutes(2),
            workingDirectory: BaseDirectory,
            cancellationToken: ct).ConfigureAwait(false);
        return result.StandardOutput.TrimEnd('\n', '\r');
    }

    /// <summary>Stops the server: <c>-m immediate</c> (crash-like, fastest) or <c>-m fast</c> (clean shutdown checkpoint).</summary>
    public async Task StopAsync(bool immediate = true)
    {
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            await StopCoreAsync(immediate).ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>
    /// SIGKILLs the postmaster (pid from postmaster.pid) and all its children, as a crash would, and waits
    /// until they are gone. Open client connections see the socket drop. <see cref="StartAsync"/> recovers it.
    /// </summary>
    public async Task KillAsync()
    {
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            await KillCoreAsync().ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Starts the server again (same port) after <see cref="StopAsync"/> or <see cref="KillAsync"/>.</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _lifecycle.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_running)
            {
                return;
            }

            await PgCtlStartAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>
    /// Stops every server this object started (standbys first) and, for a primary, deletes the base directory;
    /// a standby only deletes its own data directory. Never throws for cleanup failures.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var standby in Standbys)
        {
            await standby.DisposeAsync().ConfigureAwait(false);
        }

        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_running || File.Exists(PidFile))
            {
                try
                {
                    await StopCoreAsync(immediate: true).ConfigureAwait(false);
                }
                catch (ProcessRunException)
                {
                    // pg_ctl could not stop it (hung, or pid file stale): make sure nothing survives anyway.
                    await KillCoreAsync().ConfigureAwait(false);
                }
            }

            if (_primary is null)
            {
                CleanupRegistry.Unregister(this);
                await DeleteDirectoryAsync(BaseDirectory).ConfigureAwait(false);
            }
            else
            {
                lock (_primary._standbys)
                {
                    _primary._standbys.Remove(this);
                }

                await DeleteDirectoryAsync(DataDirectory).ConfigureAwait(false);
            }
        }
        finally
        {
            // Not disposed: a late StopAsync/KillAsync after DisposeAsync must find a usable (idle) lock.
            _lifecycle.Release();
        }
    }

    public override string ToString() => $"{Name} ({LoopbackHost}:{Port.ToString(CultureInfo.InvariantCulture)}, {DataDirectory})";

    private string PidFile => Path.Combine(DataDirectory, "postmaster.pid");

    private async Task InitDbAsync(CancellationToken ct)
    {
        await RunServerToolAsync(
            "initdb",
            [
                "-D", DataDirectory, "-A", "trust", "-U", Superuser, "--no-sync",

                // Pin encoding/locale: the container's LANG is arbitrary and tests compare text.
                "-E", "UTF8", "--locale=C",
            ],
            TimeSpan.FromMinutes(3),
            ct).ConfigureAwait(false);

        var settings = new List<(string Key, string Value)>
        {
            ("port", Port.ToString(CultureInfo.InvariantCulture)),
            ("listen_addresses", Literal(LoopbackHost)),
            ("unix_socket_directories", Literal(SocketDirectory)),
            ("max_connections", _options.MaxConnections.ToString(CultureInfo.InvariantCulture)),
            ("cluster_name", Literal(Name)),

            // Throwaway data: durability only costs time.
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),

            // Streaming replication for AddStandbyAsync.
            ("wal_level", "replica"),
            ("max_wal_senders", "10"),
            ("hot_standby", "on"),

            // Lets a standby that was stopped for a while catch up without a replication slot.
            ("wal_keep_size", "'256MB'"),
        };
        if (_options.Settings is not null)
        {
            settings.AddRange(_options.Settings.Select(kv => (kv.Key, kv.Value)));
        }

        AppendConfig("postgresql.conf", settings);

        var hbaPath = Path.Combine(DataDirectory, "pg_hba.conf");
        var hba = await File.ReadAllTextAsync(hbaPath, ct).ConfigureAwait(false);
        var sb = new StringBuilder();
        if (_options.ExtraHbaEntries is { Count: > 0 } extra)
        {
            sb.AppendLine("# FastPool sandbox: test-specific rules first (first match wins)");
            foreach (var line in extra)
            {
                sb.AppendLine(line);
            }
        }

        sb.Append(hba);
        sb.AppendLine();
        sb.AppendLine("# FastPool sandbox: standbys take base backups and stream over loopback");
        sb.AppendLine("host replication all 127.0.0.1/32 trust");

        // WriteAllText truncates in place, so the file keeps its postgres ownership when we are root.
        await File.WriteAllTextAsync(hbaPath, sb.ToString(), ct).ConfigureAwait(false);
    }

    private async Task StartWithPortRetryAsync(CancellationToken ct)
    {
        // FindFreePort releases the port before postgres binds it, so another process can win the race;
        // in that case pick a new port and try again instead of failing the whole test run.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await PgCtlStartAsync(ct).ConfigureAwait(false);
                return;
            }
            catch (ProcessRunException) when (attempt < MaxPortAttempts && LogMentionsPortInUse())
            {
                Port = FindFreePort();
                AppendConfig(
                    _primary is null ? "postgresql.conf" : "postgresql.auto.conf",
                    [("port", Port.ToString(CultureInfo.InvariantCulture))]);
            }
        }
    }

    private async Task PgCtlStartAsync(CancellationToken ct)
    {
        var timeoutSeconds = (int)Math.Ceiling(_options.StartTimeout.TotalSeconds);
        try
        {
            await RunServerToolAsync(
                "pg_ctl",
                ["-D", DataDirectory, "-l", LogFile, "-w", "-t", timeoutSeconds.ToString(CultureInfo.InvariantCulture), "start"],
                _options.StartTimeout + TimeSpan.FromSeconds(30),
                ct).ConfigureAwait(false);
        }
        catch (ProcessRunException ex)
        {
            throw new ProcessRunException($"{ex.Message}{Environment.NewLine}--- tail of {LogFile} ---{Environment.NewLine}{ReadLogTail()}", ex.Result, ex);
        }

        _running = true;
    }

    private async Task StopCoreAsync(bool immediate)
    {
        if (!_running && !File.Exists(PidFile))
        {
            return;
        }

        var result = await RunServerToolAsync(
            "pg_ctl",
            [
                "-D", DataDirectory, "-m", immediate ? "immediate" : "fast", "-w",
                "-t", ((int)_stopTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture), "stop",
            ],
            _stopTimeout + TimeSpan.FromSeconds(30),
            CancellationToken.None,
            throwOnError: false).ConfigureAwait(false);

        // pg_ctl exits 1 with "Is server running?" when the postmaster already died (e.g. killed
        // behind our back); that is a successful stop from our point of view.
        if (result.ExitCode != 0 && File.Exists(PidFile) && IsPostmasterAlive())
        {
            throw new ProcessRunException(
                $"Command failed with exit code {result.ExitCode}: {result.CommandLine}{Environment.NewLine}{result.StandardError.Trim()}",
                result);
        }

        if (result.ExitCode != 0)
        {
            // Died behind our back: clear what it left so a later StartAsync is not refused.
            RemoveStaleLockFiles();
        }

        _running = false;
    }

    private async Task KillCoreAsync()
    {
        KillServerProcesses();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (IsPostmasterAlive() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50).ConfigureAwait(false);
        }

        RemoveStaleLockFiles();
        _running = false;
    }

    /// <summary>Synchronous SIGKILL of the postmaster and its children; also used from the ProcessExit handler.</summary>
    private void KillServerProcesses()
    {
        var pid = ReadPostmasterPid();
        if (pid is not int postmasterPid)
        {
            return;
        }

        // Collect the children first: once the postmaster is gone they are reparented and no longer findable.
        var children = ProcFs.ChildrenOf(postmasterPid);
        SigKill(postmasterPid);
        foreach (var child in children)
        {
            SigKill(child);
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (children.Any(ProcFs.IsAlive) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(20);
        }
    }

    /// <summary>
    /// After SIGKILL postgres leaves postmaster.pid and the socket lock behind. If our container's init does
    /// not reap the orphaned postmaster, its zombie keeps the pid "alive" for kill(pid, 0) and a restart would
    /// refuse to start; every process of the old server is dead at this point, so the files are safe to remove.
    /// </summary>
    private void RemoveStaleLockFiles()
    {
        if (IsPostmasterAlive())
        {
            return;
        }

        var port = Port.ToString(CultureInfo.InvariantCulture);
        TryDeleteFile(PidFile);
        TryDeleteFile(Path.Combine(SocketDirectory, ".s.PGSQL." + port + ".lock"));
        TryDeleteFile(Path.Combine(SocketDirectory, ".s.PGSQL." + port));
    }

    private bool IsPostmasterAlive() => ReadPostmasterPid() is int pid && ProcFs.IsAlive(pid);

    private int? ReadPostmasterPid()
    {
        try
        {
            using var reader = new StreamReader(PidFile);
            var firstLine = reader.ReadLine();
            return int.TryParse(firstLine, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private async Task WaitForStreamingAsync(string applicationName, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + _replicationTimeout;
        var sql = $"select state from pg_stat_replication where application_name = {Literal(applicationName)}";
        while (true)
        {
            var lastState = await PsqlAsync(sql, ct: ct).ConfigureAwait(false);
            if (lastState.Split('\n').Contains("streaming", StringComparer.Ordinal))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException(
                    $"Standby '{applicationName}' did not reach 'streaming' within {_replicationTimeout.TotalSeconds:0} s " +
                    $"(last state: '{lastState}'). See {LogFile} and the standby's log.");
            }

            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    private void AppendConfig(string fileName, IEnumerable<(string Key, string Value)> settings)
    {
        var sb = new StringBuilder();
        sb.AppendLine();
        sb.AppendLine("# --- added by FastPool sandbox (later lines win) ---");
        foreach (var (key, value) in settings)
        {
            sb.Append(key).Append(" = ").AppendLine(value);
        }

        // Appending keeps the owner (postgres) of the existing file when we run as root.
        File.AppendAllText(Path.Combine(DataDirectory, fileName), sb.ToString());
    }

    private bool LogMentionsPortInUse()
    {
        var tail = ReadLogTail();
        return tail.Contains("could not bind", StringComparison.OrdinalIgnoreCase)
            || tail.Contains("Address already in use", StringComparison.OrdinalIgnoreCase)
            || tail.Contains("lock file", StringComparison.OrdinalIgnoreCase);
    }

    private string ReadLogTail(int maxChars = 4000)
    {
        try
        {
            var text = File.ReadAllText(LogFile);
            return text.Length <= maxChars ? text : text[^maxChars..];
        }
        catch (IOException)
        {
            return "(no log)";
        }
        catch (UnauthorizedAccessException)
        {
            return "(log not readable)";
        }
    }

    private Task<ProcessResult> RunServerToolAsync(
        string tool,
        IEnumerable<string> arguments,
        TimeSpan timeout,
        CancellationToken ct,
        bool throwOnError = true)
    {
        var (fileName, args) = ProcessRunner.AsPostgresUser(Path.Combine(BinDirectory, tool), arguments);

        // The postgres user may not be able to enter our current directory; the base directory is its own.
        return ProcessRunner.RunAsync(fileName, args, timeout, BaseDirectory, throwOnError, ct);
    }

    private string PsqlPath()
    {
        var candidate = Path.Combine(BinDirectory, "psql");
        return File.Exists(candidate) ? candidate : "psql";
    }

    /// <summary>Synchronous last-resort cleanup for AppDomain.ProcessExit: kill everything, delete the directory.</summary>
    private void EmergencyCleanup()
    {
        foreach (var standby in Standbys)
        {
            standby.KillServerProcesses();
        }

        KillServerProcesses();
        try
        {
            Directory.Delete(BaseDirectory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort at process exit; nothing sensible left to do.
        }
        catch (UnauthorizedAccessException)
        {
            // Same.
        }
    }

    private static async Task<string> FindBinDirectoryAsync(CancellationToken ct)
    {
        try
        {
            var result = await ProcessRunner.RunAsync("pg_config", ["--bindir"], TimeSpan.FromSeconds(30), throwOnError: false, cancellationToken: ct)
                .ConfigureAwait(false);
            var dir = result.StandardOutput.Trim();
            if (result.ExitCode == 0 && File.Exists(Path.Combine(dir, "initdb")))
            {
                return dir;
            }
        }
        catch (ProcessRunException)
        {
            // pg_config not installed (it lives in libpq-dev on Debian); fall through to the well-known layout.
        }

        // Debian/Ubuntu layout: /usr/lib/postgresql/<major>/bin; the newest major wins.
        const string debianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(debianRoot))
        {
            var best = Directory.EnumerateDirectories(debianRoot)
                .Select(d => (Dir: Path.Combine(d, "bin"), Version: ParseVersion(Path.GetFileName(d))))
                .Where(x => x.Version is not null && File.Exists(Path.Combine(x.Dir, "initdb")))
                .OrderByDescending(x => x.Version)
                .Select(x => x.Dir)
                .FirstOrDefault();
            if (best is not null)
            {
                return best;
            }
        }

        throw new InvalidOperationException(
            "Could not find the PostgreSQL server binaries: neither `pg_config --bindir` nor /usr/lib/postgresql/*/bin has initdb.");
    }

    private static Version? ParseVersion(string name) =>
        Version.TryParse(name.Contains('.', StringComparison.Ordinal) ? name : name + ".0", out var version) ? version : null;

    private static async Task PrepareBaseDirectoryAsync(string baseDirectory, CancellationToken ct)
    {
        Directory.CreateDirectory(baseDirectory);

        // The sandbox only targets Unix (PostgreSQL server binaries, runuser, unix sockets).
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("The PostgreSQL sandbox only runs on Linux/Unix.");
        }

        // Others need to traverse it to reach the unix sockets; data directories are 0700 on their own.
        File.SetUnixFileMode(
            baseDirectory,
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
            UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

        if (ProcessRunner.IsRoot)
        {
            // initdb/pg_ctl run as postgres and must create data dirs, logs and sockets in here.
            await ProcessRunner.RunAsync("chown", ["-R", "postgres:postgres", baseDirectory], TimeSpan.FromSeconds(30), cancellationToken: ct)
                .ConfigureAwait(false);
        }
    }

    private static int FindFreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static async Task DeleteDirectoryAsync(string directory)
    {
        // A just-stopped server may still be unlinking files for a moment; retry briefly.
        for (var attempt = 0; attempt < 20; attempt++)
        {
            try
            {
                if (Directory.Exists(directory))
                {
                    Directory.Delete(directory, recursive: true);
                }

                return;
            }
            catch (IOException) when (attempt < 19)
            {
                await Task.Delay(100).ConfigureAwait(false);
            }
            catch (UnauthorizedAccessException) when (attempt < 19)
            {
                await Task.Delay(100).ConfigureAwait(false);
            }
            catch (IOException)
            {
                return;
            }
            catch (UnauthorizedAccessException)
            {
                return;
            }
        }
    }

    private static void SigKill(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
        }
        catch (ArgumentException)
        {
            // Already gone.
        }
        catch (InvalidOperationException)
        {
            // Exited between lookup and kill.
        }
        catch (Win32Exception)
        {
            // Not ours to signal; the caller's wait loop will time out and report.
        }
    }

    private static void TryDeleteFile(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort.
        }
        catch (UnauthorizedAccessException)
        {
            // Best effort.
        }
    }

    /// <summary>postgresql.conf string literal.</summary>
    private static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string QuoteConnValue(string value) =>
        value.AsSpan().IndexOfAny(";=\"' ") < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>Minimal /proc reading: enough to find a postmaster's children and tell dead (or zombie) pids.</summary>
    private static class ProcFs
    {
        public static List<int> ChildrenOf(int parentPid)
        {
            var children = new List<int>();
            IEnumerable<string> entries;
            try
            {
                entries = Directory.EnumerateDirectories("/proc");
            }
            catch (IOException)
            {
                return children;
            }

            foreach (var entry in entries)
            {
                if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                {
                    continue;
                }

                if (ReadStat(pid) is { } stat && stat.ParentPid == parentPid)
                {
                    children.Add(pid);
                }
            }

            return children;
        }

        /// <summary>A zombie counts as dead: it will never run again, only its parent (or init) can reap it.</summary>
        public static bool IsAlive(int pid) => ReadStat(pid) is { } stat && stat.State != 'Z' && stat.State != 'X';

        private static (char State, int ParentPid)? ReadStat(int pid)
        {
            string text;
            try
            {
                text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            }
            catch (IOException)
            {
                return null;
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }

            // Format: "pid (comm) state ppid ..."; comm may itself contain spaces and parentheses.
            var close = text.LastIndexOf(')');
            if (close < 0 || close + 2 >= text.Length)
            {
                return null;
            }

            var fields = text[(close + 2)..].Split(' ', 3);
            return fields.Length >= 2 && int.TryParse(fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var ppid)
                ? (fields[0][0], ppid)
                : null;
        }
    }

    /// <summary>
    /// Primaries that are still alive, cleaned up synchronously at process exit so an aborted test run or a
    /// crashed sandbox does not leave postgres servers and directories behind (SIGKILL of us cannot be helped).
    /// </summary>
    private static class CleanupRegistry
    {
        private static readonly ConcurrentDictionary<PgCluster, byte> _live = new();

        // Kept referenced: a collected registration unregisters its handler.
        private static readonly List<PosixSignalRegistration> _signalRegistrations = [];
        private static int _hooked;

        public static void Register(PgCluster cluster)
        {
            if (Interlocked.Exchange(ref _hooked, 1) == 0)
            {
                AppDomain.CurrentDomain.ProcessExit += (_, _) => CleanupAll();
                HookTerminationSignals();
            }

            _live.TryAdd(cluster, 0);
        }

        /// <summary>
        /// Since .NET 10 the runtime no longer turns SIGTERM into ProcessExit, and SIGINT/SIGHUP/SIGQUIT never
        /// did: without these hooks `kill`, Ctrl+C or an aborted `dotnet test` would orphan the servers.
        /// </summary>
        private static void HookTerminationSignals()
        {
            if (OperatingSystem.IsWindows() || OperatingSystem.IsBrowser() || OperatingSystem.IsWasi())
            {
                return;
            }

            foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP, PosixSignal.SIGQUIT })
            {
                try
                {
                    _signalRegistrations.Add(PosixSignalRegistration.Create(signal, OnTerminationSignal));
                }
                catch (PlatformNotSupportedException)
                {
                    // Not every platform exposes every signal; ProcessExit still covers normal exits.
                }
            }
        }

        private static void OnTerminationSignal(PosixSignalContext context)
        {
            // The runtime calls handlers newest-first and stops at the first one that cancels, so a graceful
            // Ctrl+C/SIGTERM handler registered after the sandbox started (the CLI's) pre-empts this one and
            // disposes the sandbox itself. We only get here when the process is really about to die.
            if (!context.Cancel)
            {
                CleanupAll();
            }
        }

        public static void Unregister(PgCluster cluster) => _live.TryRemove(cluster, out _);

        private static void CleanupAll()
        {
            foreach (var cluster in _live.Keys)
            {
                try
                {
                    cluster.EmergencyCleanup();
                }
#pragma warning disable CA1031 // At process exit any failure must not stop the cleanup of the remaining clusters.
                catch (Exception)
#pragma warning restore CA1031
                {
                }
            }

            _live.Clear();
        }
    }
}
