using System.Globalization;
using System.Net.Sockets;
using System.Text;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;

namespace FastPool.IntegrationTests.Cli;

/// <summary>
/// `fastpool pgbouncer.ini` in place of `pgbouncer pgbouncer.ini`, in front of the shared PostgreSQL:
/// an operator's config file, psql through it, pidfile, logfile, PgBouncer's signal meanings, systemd readiness.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class DropInTests
{
    private static readonly TimeSpan _startTimeout = TimeSpan.FromSeconds(15);
    private readonly PostgresFixture _fixture;

    public DropInTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task OperatorPgBouncerIni_ServesPsql_WritesPidfileAndLogfile_AndSigtermExitsZero()
    {
        using var ws = new CliWorkspace();
        var port = FastPoolProcess.GetFreePort();
        var config = ws.WriteOperatorConfig(_fixture.Primary.Port, port);

        // Started from the config's directory, as `cd /etc/pgbouncer && pgbouncer pgbouncer.ini` would.
        await using var p = FastPoolProcess.Start([config], workingDirectory: ws.Directory);
        await p.WaitForStartAsync(port, _startTimeout);

        var (code, stdout, stderr) = await FastPoolProcess.PsqlAsync(port, "select 1");
        Assert.True(code == 0, $"psql failed ({code}): {stderr}\n{p.Describe()}");
        Assert.Equal("1", stdout.Trim());

        await WaitUntilAsync(() => File.Exists(ws.PidFile) && File.ReadAllText(ws.PidFile).Trim().Length > 0, "pidfile written", p);
        Assert.Equal(p.Pid.ToString(CultureInfo.InvariantCulture), File.ReadAllText(ws.PidFile).Trim());

        await WaitUntilAsync(() => ReadShared(ws.LogFile).Contains("login attempt", StringComparison.Ordinal), "login line in the logfile", p);
        var login = ReadShared(ws.LogFile).Split('\n').First(l => l.Contains("login attempt", StringComparison.Ordinal));
        Assert.Contains("db=postgres", login, StringComparison.Ordinal);
        Assert.Contains("user=postgres", login, StringComparison.Ordinal);
        Assert.Contains($"[{p.Pid}]", login, StringComparison.Ordinal);

        // Every key of this file is valid for PgBouncer: an unchanged pgbouncer.ini must start without warnings.
        Assert.DoesNotContain("WARNING", p.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("WARNING", ReadShared(ws.LogFile), StringComparison.Ordinal);

        p.Signal(FastPoolProcess.SIGTERM);
        Assert.Equal(0, await p.WaitForExitAsync(TimeSpan.FromSeconds(5)));
        Assert.False(File.Exists(ws.PidFile), "pidfile not removed on exit");
        Assert.False(File.Exists(Path.Combine(ws.Directory, $".s.PGSQL.{port}")), "unix socket not removed on exit");
    }

    [Fact]
    public async Task Under_systemd_the_log_lines_reach_the_journal_as_well_as_the_logfile()
    {
        using var ws = new CliWorkspace();
        var port = FastPoolProcess.GetFreePort();
        var config = ws.WriteOperatorConfig(_fixture.Primary.Port, port);

        // systemd sets JOURNAL_STREAM for a service whose stderr it collects; journalctl should show what PgBouncer in the
        // foreground would print there.
        await using var p = FastPoolProcess.Start([config], new Dictionary<string, string?> { ["JOURNAL_STREAM"] = "8:12345" }, ws.Directory);
        await p.WaitForStartAsync(port, _startTimeout);
        await p.WaitForOutputAsync($"listening on 127.0.0.1:{port}", TimeSpan.FromSeconds(10), stderr: true);
        await WaitUntilAsync(() => ReadShared(ws.LogFile).Contains($"listening on 127.0.0.1:{port}", StringComparison.Ordinal), "listen line in the logfile", p);
    }

    [Fact]
    public async Task Sigusr1_pauses_and_sigusr2_resumes_as_with_pgbouncer_and_the_process_stays_up()
    {
        using var ws = new CliWorkspace();
        var (port, config) = OperatorConfig(ws);
        await using var p = await StartServingAsync(ws, config, port);

        // Without handlers, SIGUSR1's default action ends the process and drops every client.
        p.Signal(SigUsr1);
        Assert.True(await p.StaysRunningAsync(TimeSpan.FromMilliseconds(500)), p.Describe());
        await WaitUntilAsync(() => StateOf(port) == "yes", "SHOW STATE paused = yes after SIGUSR1", p);

        // Paused: a new client's query waits.
        var waiting = FastPoolProcess.PsqlAsync(port, "select 'served'");
        await Task.Delay(700);
        Assert.False(waiting.IsCompleted, "a query ran while paused");

        p.Signal(SigUsr2);
        var (code, stdout, stderr) = await waiting.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.True(code == 0 && stdout.Trim() == "served", $"psql after SIGUSR2: {code} {stdout} {stderr}\n{p.Describe()}");
        Assert.Equal("no", StateOf(port));
        Assert.False(p.HasExited);
    }

    [Fact]
    public async Task A_second_instance_with_the_same_port_and_pidfile_is_refused_and_the_first_keeps_serving()
    {
        using var ws = new CliWorkspace();
        var (port, config) = OperatorConfig(ws);
        await using var first = await StartServingAsync(ws, config, port);
        await WaitUntilAsync(() => File.Exists(ws.PidFile) && File.ReadAllText(ws.PidFile).Trim().Length > 0, "pidfile written", first);

        await using var second = FastPoolProcess.Start([config], workingDirectory: ws.Directory);
        Assert.Equal(1, await second.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.Contains("another instance", second.Stderr + ReadShared(ws.LogFile), StringComparison.Ordinal);

        // Without the pid file check, the port itself must be refused: so_reuseport is off by default.
        File.Delete(ws.PidFile);
        await using var third = FastPoolProcess.Start([config], workingDirectory: ws.Directory);
        Assert.Equal(1, await third.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.Contains("could not listen", third.Stderr + ReadShared(ws.LogFile), StringComparison.Ordinal);

        var (code, stdout, stderr) = await FastPoolProcess.PsqlAsync(port, "select 1");
        Assert.True(code == 0 && stdout.Trim() == "1", $"the first instance stopped serving: {stderr}\n{first.Describe()}");
        Assert.False(first.HasExited);
    }

    [Fact]
    public async Task Sighup_reopens_a_rotated_logfile()
    {
        using var ws = new CliWorkspace();
        var (port, config) = OperatorConfig(ws);
        await using var p = await StartServingAsync(ws, config, port);

        // logrotate: move the file away, then HUP (PgBouncer's documented way to rotate its log).
        File.Move(ws.LogFile, ws.LogFile + ".1");
        p.Signal(SigHup);
        await WaitUntilAsync(() => File.Exists(ws.LogFile), "a new logfile after SIGHUP", p);
        Assert.Equal(0, (await FastPoolProcess.PsqlAsync(port, "select 1")).ExitCode);
        await WaitUntilAsync(() => ReadShared(ws.LogFile).Contains("login attempt", StringComparison.Ordinal), "the login logged in the new file", p);
    }

    [Fact]
    public async Task A_pidfile_that_cannot_be_written_stops_the_start_with_a_clear_message_before_listening()
    {
        using var ws = new CliWorkspace();
        var port = FastPoolProcess.GetFreePort();
        var config = ws.WriteOperatorConfig(_fixture.Primary.Port, port);
        File.WriteAllText(config, File.ReadAllText(config).Replace($"pidfile = {ws.PidFile}", "pidfile = /nonexistent-dir/fastpool.pid", StringComparison.Ordinal));

        await using var p = FastPoolProcess.Start([config], workingDirectory: ws.Directory);
        Assert.Equal(1, await p.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        var output = p.Stderr + ReadShared(ws.LogFile);
        Assert.Contains("cannot write pidfile /nonexistent-dir/fastpool.pid: its directory does not exist", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
        Assert.DoesNotContain("listening on", output, StringComparison.Ordinal);
    }

    /// <summary>An operator's pgbouncer.ini in <paramref name="ws"/>, in front of the shared PostgreSQL, on a free port.</summary>
    private (int Port, string Config) OperatorConfig(CliWorkspace ws)
    {
        var port = FastPoolProcess.GetFreePort();
        return (port, ws.WriteOperatorConfig(_fixture.Primary.Port, port));
    }

    /// <summary>Starts fastpool from the workspace, as an operator would, and waits until it serves.</summary>
    private static async Task<FastPoolProcess> StartServingAsync(CliWorkspace ws, string config, int port)
    {
        var p = FastPoolProcess.Start([config], workingDirectory: ws.Directory);
        try
        {
            await p.WaitForStartAsync(port, _startTimeout);
            return p;
        }
        catch
        {
            await p.DisposeAsync();
            throw;
        }
    }

    private const int SigHup = 1;
    private const int SigUsr1 = 10;
    private const int SigUsr2 = 12;

    /// <summary>SHOW STATE's paused value, through the admin console.</summary>
    private static string StateOf(int port)
    {
        var (_, stdout, _) = FastPoolProcess.PsqlAsync(port, "show state", database: "pgbouncer").GetAwaiter().GetResult();
        return stdout.Split('\n').Select(l => l.Split('|')).FirstOrDefault(f => f.Length == 2 && f[0] == "paused")?[1] ?? "";
    }

    /// <summary>
    /// A script that starts fastpool, waits until the port accepts (pg_isready-style) and stops it again must
    /// get the clean shutdown: once FastPool accepts connections (or has written its pidfile) a SIGTERM must be
    /// handled, not kill the process with the default action (exit status 143, pidfile left behind).
    /// </summary>
    [Fact]
    public async Task Sigterm_AsSoonAsThePortAccepts_IsAHandledShutdown_NotADeathBySignal()
    {
        using var ws = new CliWorkspace();
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var port = FastPoolProcess.GetFreePort();
            var config = ws.WriteOperatorConfig(_fixture.Primary.Port, port);
            await using var p = FastPoolProcess.Start([config], workingDirectory: ws.Directory);
            await p.WaitForPortAsync(port, _startTimeout, pollInterval: TimeSpan.Zero);

            p.Signal(FastPoolProcess.SIGTERM);

            var code = await p.WaitForExitAsync(TimeSpan.FromSeconds(10));
            Assert.True(
                code == 0 && !File.Exists(ws.PidFile),
                $"attempt {attempt}: SIGTERM right after the port started accepting ended fastpool with exit code {code} " +
                $"(143 = killed by SIGTERM: no handler installed yet), pidfile {(File.Exists(ws.PidFile) ? "left behind" : "absent")}\n{p.Describe()}");
        }
    }

    [Fact]
    public async Task Sigterm_WaitsForTheConnectedClient_StopsListening_ThenExitsZeroWhenItLeaves()
    {
        using var ws = new CliWorkspace();
        var (p, port) = await StartFromOperatorConfigAsync(ws);
        await using var _ = p;

        var conn = new NpgsqlConnection(ConnectionString(port));
        await conn.OpenAsync();
        try
        {
            Assert.Equal(1, await ScalarAsync<int>(conn, "select 1"));
            await ScalarAsync<string>(conn, "set application_name = 'held session'; select current_setting('application_name')");

            p.Signal(FastPoolProcess.SIGTERM);

            await WaitUntilAsync(() => !FastPoolProcess.IsPortOpen(port), "listener closed after SIGTERM", p);
            Assert.True(await p.StaysRunningAsync(TimeSpan.FromSeconds(1)), "fastpool exited while a client was still connected\n" + p.Describe());

            await using (var late = new NpgsqlConnection(ConnectionString(port)))
            {
                await Assert.ThrowsAnyAsync<Exception>(() => late.OpenAsync());
            }

            // The session survives the shutdown request: same server connection, same session state.
            Assert.Equal("held session", await ScalarAsync<string>(conn, "select current_setting('application_name')"));
            Assert.Equal(42, await ScalarAsync<int>(conn, "select 42"));
            Assert.False(p.HasExited, p.Describe());
        }
        finally
        {
            await conn.DisposeAsync();
        }

        Assert.Equal(0, await p.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        Assert.False(File.Exists(ws.PidFile), "pidfile not removed on exit");
        Assert.Contains("shutting down", ReadShared(ws.LogFile), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SecondSigterm_WhileAClientIsConnected_ExitsImmediately()
    {
        using var ws = new CliWorkspace();
        var (p, port) = await StartFromOperatorConfigAsync(ws);
        await using var _ = p;

        await using var conn = new NpgsqlConnection(ConnectionString(port));
        await conn.OpenAsync();
        Assert.Equal(1, await ScalarAsync<int>(conn, "select 1"));

        p.Signal(FastPoolProcess.SIGTERM);
        await WaitUntilAsync(() => !FastPoolProcess.IsPortOpen(port), "listener closed after the first SIGTERM", p);
        Assert.True(await p.StaysRunningAsync(TimeSpan.FromMilliseconds(500)), "fastpool exited on the first SIGTERM with a client connected\n" + p.Describe());

        p.Signal(FastPoolProcess.SIGTERM);
        Assert.Equal(0, await p.WaitForExitAsync(TimeSpan.FromSeconds(5)));

        await Assert.ThrowsAnyAsync<Exception>(() => ScalarAsync<int>(conn, "select 1"));
        Assert.False(File.Exists(ws.PidFile), "pidfile not removed on exit");
    }

    [Fact]
    public async Task Sigquit_ExitsImmediately_EvenWithAClientInATransaction()
    {
        using var ws = new CliWorkspace();
        var (p, port) = await StartFromOperatorConfigAsync(ws);
        await using var _ = p;

        await using var conn = new NpgsqlConnection(ConnectionString(port));
        await conn.OpenAsync();
        await using var tx = await conn.BeginTransactionAsync();
        Assert.Equal(1, await ScalarAsync<int>(conn, "select 1"));

        p.Signal(FastPoolProcess.SIGQUIT);

        // Exit code 0 (not 131, the "killed by SIGQUIT" code): the signal was handled, not fatal.
        Assert.Equal(0, await p.WaitForExitAsync(TimeSpan.FromSeconds(5)));
        await Assert.ThrowsAnyAsync<Exception>(() => ScalarAsync<int>(conn, "select 1"));
        Assert.False(FastPoolProcess.IsPortOpen(port));
    }

    [Fact]
    public async Task NotifySocket_GetsReadyWhenListening_AndStoppingOnSigterm()
    {
        using var ws = new CliWorkspace();
        var port = FastPoolProcess.GetFreePort();
        var config = ws.WriteOperatorConfig(_fixture.Primary.Port, port);
        var notifyPath = Path.Combine(ws.Directory, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(notifyPath));

        await using var p = FastPoolProcess.Start(
            [config],
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notifyPath },
            ws.Directory);

        var ready = await ReceiveAsync(notify, TimeSpan.FromSeconds(10), p);
        Assert.Contains("READY=1", ready.Split('\n'));
        Assert.Contains($"MAINPID={p.Pid}", ready.Split('\n'));

        // READY=1 means "accepting connections" (systemd starts dependent units on it): true at that moment.
        Assert.True(FastPoolProcess.IsPortOpen(port), "READY=1 sent before the port accepts connections");

        p.Signal(FastPoolProcess.SIGTERM);
        var stopping = await ReceiveAsync(notify, TimeSpan.FromSeconds(10), p);
        Assert.Contains("STOPPING=1", stopping.Split('\n'));
        Assert.Equal(0, await p.WaitForExitAsync(TimeSpan.FromSeconds(5)));
    }

    /// <summary>fastpool started on an operator-style pgbouncer.ini in <paramref name="ws"/>, accepting connections.</summary>
    private async Task<(FastPoolProcess Process, int Port)> StartFromOperatorConfigAsync(CliWorkspace ws)
    {
        var port = FastPoolProcess.GetFreePort();
        var config = ws.WriteOperatorConfig(_fixture.Primary.Port, port);
        var p = FastPoolProcess.Start([config], workingDirectory: ws.Directory);
        try
        {
            await p.WaitForStartAsync(port, _startTimeout);
        }
        catch
        {
            await p.DisposeAsync();
            throw;
        }

        return (p, port);
    }

    private static string ConnectionString(int port) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = port,
        Database = "postgres",
        Username = "postgres",
        Pooling = false,
        Timeout = 5,
        CommandTimeout = 10,
    }.ConnectionString;

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<string> ReceiveAsync(Socket socket, TimeSpan timeout, FastPoolProcess p)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            return Encoding.UTF8.GetString(buffer, 0, n);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"nothing on NOTIFY_SOCKET within {timeout.TotalSeconds:0.#} s\n{p.Describe()}");
        }
    }

    /// <summary>The logfile is held open (and appended to) by fastpool: read it without locking it.</summary>
    private static string ReadShared(string path)
    {
        if (!File.Exists(path))
        {
            return string.Empty;
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what, FastPoolProcess p)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for: {what}\n{p.Describe()}");
            }

            await Task.Delay(50);
        }
    }
}
