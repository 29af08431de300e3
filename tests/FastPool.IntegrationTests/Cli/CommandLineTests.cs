using System.Text.RegularExpressions;

namespace FastPool.IntegrationTests.Cli;

/// <summary>
/// The `fastpool` executable's command line and configuration errors, as a user meets them.
/// No PostgreSQL needed: nothing here reaches a server.
/// </summary>
public sealed class CommandLineTests
{
    private static readonly TimeSpan _exitTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Version_PrintsVersion_AndExitsZero()
    {
        await using var p = await FastPoolProcess.RunToExitAsync(["--version"]);

        Assert.True(p.ExitCode == 0, p.Describe());
        Assert.Matches(new Regex(@"^\d+\.\d+\.\d+", RegexOptions.Multiline), p.Stdout);
    }

    [Fact]
    public async Task Dash_V_prints_the_version_as_PgBouncer_does()
    {
        await using var p = await FastPoolProcess.RunToExitAsync(["-V"]);

        Assert.True(p.ExitCode == 0, p.Describe());
        Assert.Matches(new Regex(@"^\d+\.\d+\.\d+", RegexOptions.Multiline), p.Stdout);
    }

    [Fact]
    public async Task Dash_u_with_an_unknown_user_fails_before_starting()
    {
        using var ws = new CliWorkspace();
        var port = FastPoolProcess.GetFreePort();
        var config = ws.WriteOperatorConfig(backendPort: 1, listenPort: port);

        await using var p = await FastPoolProcess.RunToExitAsync(["-u", "fastpool_no_such_user", config]);

        Assert.True(p.ExitCode == 1, p.Describe());
        Assert.Contains("user \"fastpool_no_such_user\" does not exist", p.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(ws.PidFile), "a pidfile was written although FastPool did not start");
    }

    [Fact]
    public async Task Dash_u_runs_as_that_user_and_its_pidfile_belongs_to_it()
    {
        using var ws = new CliWorkspace();
        var port = FastPoolProcess.GetFreePort();
        var config = ws.WriteOperatorConfig(backendPort: 1, listenPort: port);
        var postgresUid = PostgresUid();
        if (OperatingSystem.IsWindows() || Environment.UserName != "root")
        {
            // Only root may change user: anyone else is told so, and nothing starts.
            await using var refused = await FastPoolProcess.RunToExitAsync(["-u", "postgres", config]);
            Assert.True(refused.ExitCode == 1 || Environment.UserName == "postgres", refused.Describe());
            return;
        }

        // The pidfile and logfile go in the workspace, which the postgres user must be able to write.
        File.SetUnixFileMode(ws.Directory, (UnixFileMode)0x1FF);
        await using var p = FastPoolProcess.Start("-u", "postgres", config);

        // The port, not READY=1: the test's notify socket is root's, where systemd's accepts any user.
        await p.WaitForPortAsync(port, TimeSpan.FromSeconds(15));

        var uids = File.ReadAllLines($"/proc/{p.Pid}/status").Single(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        Assert.Equal(["Uid:", postgresUid, postgresUid, postgresUid, postgresUid], uids.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries));
        Assert.True(File.Exists(ws.PidFile), p.Describe());
        var stat = await System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u", ws.PidFile]) { RedirectStandardOutput = true })!.StandardOutput.ReadToEndAsync();
        Assert.Equal(postgresUid, stat.Trim());

        p.Signal(FastPoolProcess.SIGTERM);
        Assert.Equal(0, await p.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    private static string PostgresUid() =>
        File.ReadAllLines("/etc/passwd").Select(l => l.Split(':')).Single(f => f[0] == "postgres")[2];

    [Fact]
    public async Task Help_PrintsUsage_MentioningPgBouncerIniAndSandbox_AndExitsZero()
    {
        await using var p = await FastPoolProcess.RunToExitAsync(["--help"]);

        Assert.True(p.ExitCode == 0, p.Describe());
        Assert.Contains("Usage", p.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("pgbouncer.ini", p.Stdout, StringComparison.Ordinal);
        Assert.Contains("--sandbox", p.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownOption_ExitsNonZero_AndNamesTheOption()
    {
        await using var p = await FastPoolProcess.RunToExitAsync(["--no-such-option"]);

        Assert.True(p.ExitCode != 0, p.Describe());
        Assert.Contains("--no-such-option", p.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Daemon_on_a_port_another_process_listens_on_fails_with_a_nonzero_exit()
    {
        using var ws = new CliWorkspace();
        using var other = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        other.Start();
        var port = ((System.Net.IPEndPoint)other.LocalEndpoint).Port;
        var config = ws.WriteOperatorConfig(backendPort: 1, listenPort: port);

        // The port accepts already, but not because this daemon listens: an init script must see the failure.
        await using var p = await FastPoolProcess.RunToExitAsync(["-d", config]);

        Assert.True(p.ExitCode != 0, p.Describe());
        Assert.Contains("already accepts connections", p.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownOption_AfterAValidConfig_ExitsNonZero_WithoutStarting()
    {
        using var ws = new CliWorkspace();
        var port = FastPoolProcess.GetFreePort();
        var config = ws.WriteOperatorConfig(backendPort: 1, listenPort: port);

        await using var p = await FastPoolProcess.RunToExitAsync([config, "--no-such-option"]);

        Assert.True(p.ExitCode != 0, p.Describe());
        Assert.Contains("--no-such-option", p.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(ws.PidFile), "a pidfile was written although the command line was rejected");
    }

    /// <summary>
    /// An option FastPool does not know must be reported as such (like `pgbouncer --no-such-option`:
    /// "unrecognized option"), not be taken for the config file path: exit code 2 is documented as
    /// "the configuration file is missing or invalid", which is not what happened.
    /// </summary>
    [Fact]
    public async Task UnknownOption_IsReportedAsAnOption_NotReadAsTheConfigFilePath()
    {
        await using var p = await FastPoolProcess.RunToExitAsync(["--no-such-option"]);

        Assert.True(p.ExitCode != 0, p.Describe());
        Assert.True(
            !p.Stderr.Contains("cannot read config file", StringComparison.OrdinalIgnoreCase) && p.ExitCode != 2,
            "an unknown option was read as the path of the config file (exit code 2, \"cannot read config file\") " +
            "instead of being rejected as an unrecognized option\n" + p.Describe());
    }

    [Fact]
    public async Task MissingConfigFile_Exits2_AndNamesTheFile()
    {
        using var ws = new CliWorkspace();
        var missing = Path.Combine(ws.Directory, "no-such-pgbouncer.ini");

        await using var p = await FastPoolProcess.RunToExitAsync([missing]);

        Assert.True(p.ExitCode == 2, p.Describe());
        Assert.Contains(missing, p.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvalidValue_Exits2_WithFileLineAndAcceptedValues()
    {
        using var ws = new CliWorkspace();
        var port = FastPoolProcess.GetFreePort();
        var config = ws.WriteOperatorConfig(backendPort: 1, listenPort: port, poolMode: "sometimes");
        var line = ws.LineOf("pool_mode = sometimes");

        await using var p = await FastPoolProcess.RunToExitAsync([config]);

        Assert.True(p.ExitCode == 2, p.Describe());
        Assert.Contains($"{config}:{line}", p.Stderr, StringComparison.Ordinal);
        Assert.Contains("sometimes", p.Stderr, StringComparison.Ordinal);
        Assert.Contains("session, transaction, statement", p.Stderr, StringComparison.Ordinal);
        Assert.False(FastPoolProcess.IsPortOpen(port), "fastpool listened although its configuration is invalid");
        Assert.False(File.Exists(ws.PidFile), "a pidfile was written although the configuration is invalid");
    }

    [Fact]
    public async Task UnknownKey_WarnsWithFileAndLine_AndTheProxyStillStarts()
    {
        using var ws = new CliWorkspace();
        var port = FastPoolProcess.GetFreePort();
        var config = ws.WriteOperatorConfig(backendPort: 1, listenPort: port, extraPgBouncer: ["no_such_setting = 42"]);
        var line = ws.LineOf("no_such_setting");

        await using var p = FastPoolProcess.Start(config);
        await p.WaitForStartAsync(port, TimeSpan.FromSeconds(15));

        var warning = p.Stderr.Split('\n').FirstOrDefault(l => l.Contains("WARNING", StringComparison.Ordinal));
        Assert.True(warning is not null, "no WARNING on stderr\n" + p.Describe());
        Assert.Contains($"{config}:{line}", warning, StringComparison.Ordinal);
        Assert.Contains("no_such_setting", warning, StringComparison.Ordinal);

        p.Signal(FastPoolProcess.SIGTERM);
        Assert.Equal(0, await p.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }
}
