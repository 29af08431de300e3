using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using FastPool.IntegrationTests.Cli;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using Xunit.Abstractions;

namespace FastPool.IntegrationTests.Operations;

/// <summary>
/// tools/rolling-restart.sh with so_reuseport = 1: a new fastpool takes over the port while pgbench runs, twice,
/// and pgbench sees no failed transaction and no refused connection.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed partial class RollingRestartTests
{
    private readonly PostgresFixture _fixture;
    private readonly ITestOutputHelper _output;

    public RollingRestartTests(PostgresFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
    }

    [GeneratedRegex(@"number of transactions actually processed: (\d+)")]
    private static partial Regex Processed();

    [GeneratedRegex(@"number of failed transactions: (\d+)")]
    private static partial Regex Failed();

    [Fact]
    public async Task PgbenchAcrossTwoRollingRestarts_SeesNoFailedTransaction()
    {
        using var ws = new CliWorkspace();
        int port = FastPoolProcess.GetFreePort();
        var config = ws.WriteConfig($"""
            [databases]
            postgres = host=127.0.0.1 port={_fixture.Primary.Port} dbname=postgres

            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = {port}
            unix_socket_dir =
            auth_type = trust
            auth_file = {ws.UserList}
            pool_mode = transaction
            default_pool_size = 8
            max_client_conn = 200
            pidfile = {ws.PidFile}
            logfile = {ws.LogFile}
            so_reuseport = 1
            shutdown_wait_timeout = 30
            """);
        File.WriteAllText(ws.UserList, "\"postgres\" \"\"\n");
        var script = Path.Combine(ws.Directory, "select.sql");
        File.WriteAllText(script, "select 1;\n");
        var wrapper = WriteFastPoolWrapper(ws.Directory);

        await using var first = FastPoolProcess.Start(config);
        await first.WaitForStartAsync(port, TimeSpan.FromSeconds(60));
        var pids = new List<int> { first.Pid };
        try
        {
            // A new connection per transaction (-C): every transaction crosses the accept path the switch changes.
            var bench = ProtocolTestSupport.RunToolAsync("pgbench",
                ["-n", "-C", "-c", "4", "-j", "2", "-T", "14", "-P", "1", "-f", script, "-h", "127.0.0.1",
                 "-p", port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "postgres"],
                TimeSpan.FromMinutes(3));

            for (int restart = 1; restart <= 2; restart++)
            {
                await Task.Delay(TimeSpan.FromSeconds(4));
                var sw = Stopwatch.StartNew();
                var result = await ProtocolTestSupport.RunToolAsync("bash",
                    [Path.Combine(RepositoryRoot(), "tools", "rolling-restart.sh"), "--fastpool", wrapper, config], TimeSpan.FromMinutes(2));
                _output.WriteLine($"restart {restart} ({sw.Elapsed.TotalSeconds:0.0} s): {result.StandardOutput}{result.StandardError}");
                Assert.True(result.ExitCode == 0, $"rolling restart {restart} failed: {result}\nlog:\n{File.ReadAllText(ws.LogFile)}");
                int now = int.Parse(File.ReadAllText(ws.PidFile).Trim(), CultureInfo.InvariantCulture);
                Assert.DoesNotContain(now, pids);
                Assert.True(ProcessAlive(now), "the new fastpool is not running");
                Assert.All(pids, pid => Assert.False(ProcessAlive(pid), $"the old fastpool {pid} still runs"));
                pids.Add(now);
            }

            var outcome = await bench;
            _output.WriteLine(outcome.StandardOutput);
            _output.WriteLine(outcome.StandardError);
            Assert.True(outcome.ExitCode == 0, "pgbench failed: " + outcome);
            var processed = long.Parse(Processed().Match(outcome.StandardOutput).Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.True(processed > 100, $"pgbench ran only {processed} transactions");
            Assert.Equal("0", Failed().Match(outcome.StandardOutput).Groups[1].Value);
            Assert.DoesNotContain("aborted", outcome.StandardError, StringComparison.Ordinal);
            Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(30)));

            // The log shows each old process handing over before it closed.
            var log = File.ReadAllText(ws.LogFile);
            Assert.True(Regex.Count(log, "so_reuseport: handing the port over \\(new connections go to the next process") == 2, "log:\n" + log);
        }
        finally
        {
            // The processes the script started are not this test's children: stop them by pid.
            foreach (var pid in pids.Skip(1).Where(ProcessAlive))
            {
                using var p = Process.GetProcessById(pid);
                FastPoolProcessSignal(pid, FastPoolProcess.SIGTERM);
                if (!p.WaitForExit(30_000))
                {
                    p.Kill();
                }
            }
        }

        Assert.False(File.Exists(ws.PidFile), "the last fastpool left its pidfile");
    }

    /// <summary>A script that runs this build's fastpool as the apphost or through the dotnet host.</summary>
    private static string WriteFastPoolWrapper(string directory)
    {
        var (fileName, prefix) = FastPoolProcess.Command;
        var path = Path.Combine(directory, "fastpool");
        var words = new[] { fileName }.Concat(prefix).Select(w => "'" + w.Replace("'", "'\\''", StringComparison.Ordinal) + "'");
        File.WriteAllText(path, "#!/bin/sh\nexec " + string.Join(' ', words) + " \"$@\"\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return path;
    }

    private static bool ProcessAlive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static void FastPoolProcessSignal(int pid, int signal) => _ = Kill(pid, signal);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "FastPool.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("FastPool.sln not found above " + AppContext.BaseDirectory);
    }
}
