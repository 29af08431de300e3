using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;

namespace FastPool.IntegrationTests.Cli;

/// <summary>
/// `fastpool --sandbox`: the first thing a new user runs. It must print a psql line that works, put the
/// primary behind that port, and leave nothing behind on Ctrl-C. Starts its own PostgreSQL servers.
/// </summary>
public sealed partial class SandboxCliTests
{
    [Fact]
    public async Task Sandbox_PrintsPsqlLine_ServesThePrimary_AndCtrlCRemovesEverything()
    {
        var port = FastPoolProcess.GetFreePort();
        string? directory = null;
        var p = FastPoolProcess.Start("--sandbox", "--port", port.ToString(CultureInfo.InvariantCulture));
        try
        {
            directory = await RunAndStopAsync(p, port);
        }
        finally
        {
            await p.DisposeAsync();
            directory ??= SandboxDirectoryLine().Match(p.Stdout) is { Success: true } m ? m.Groups[1].Value.Trim() : null;
            CleanUpAfterFailure(directory);
        }
    }

    /// <summary>The test proper; returns the sandbox directory it saw.</summary>
    private static async Task<string> RunAndStopAsync(FastPoolProcess p, int port)
    {
        await p.WaitForOutputAsync($"psql -h 127.0.0.1 -p {port}", TimeSpan.FromSeconds(60));
        await p.WaitForOutputAsync("Press Ctrl-C", TimeSpan.FromSeconds(5));
        var stdout = p.Stdout;

        var directoryMatch = SandboxDirectoryLine().Match(stdout);
        Assert.True(directoryMatch.Success, "stdout does not name the sandbox directory\n" + p.Describe());
        var directory = directoryMatch.Groups[1].Value.Trim();
        Assert.True(Directory.Exists(directory), $"sandbox directory {directory} does not exist\n{p.Describe()}");

        var backendPorts = BackendPortLine().Matches(stdout).Select(m => int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.True(backendPorts.Length == 2, "stdout does not list the primary and the standby\n" + p.Describe());
        Assert.All(backendPorts, bp => Assert.True(FastPoolProcess.IsPortOpen(bp), $"backend port {bp} is not open"));

        await using (var conn = new NpgsqlConnection($"Host=127.0.0.1;Port={port};Database=postgres;Username=postgres;Pooling=false;Timeout=10;Command Timeout=20"))
        {
            await conn.OpenAsync();

            // Reads may be balanced to the standby (the sandbox routes by default), so the primary is seen through a
            // write: the table records where it was created, and reading it back is the client's own write.
            await using var create = new NpgsqlCommand("create table npgsql_check as select pg_is_in_recovery() as r", conn);
            await create.ExecuteNonQueryAsync();
            await using var cmd = new NpgsqlCommand("select r from npgsql_check", conn);
            Assert.Equal(false, await cmd.ExecuteScalarAsync());
        }

        // The psql line printed is the one a user copies: it must work as printed, writes included.
        var (code, psqlOut, psqlErr) = await FastPoolProcess.PsqlAsync(port, "create table psql_check as select pg_is_in_recovery() as r; select r from psql_check");
        Assert.True(code == 0, $"psql failed ({code}): {psqlErr}\n{p.Describe()}");
        Assert.Equal("f", psqlOut.Trim().Split('\n')[^1]); // the last line: the SELECT (CREATE TABLE AS prints its tag first)

        p.Signal(FastPoolProcess.SIGINT);
        Assert.Equal(0, await p.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        Assert.False(Directory.Exists(directory), $"sandbox directory {directory} still exists after Ctrl-C");
        Assert.False(FastPoolProcess.IsPortOpen(port), "fastpool's port still accepts connections");
        Assert.All(backendPorts, bp => Assert.False(FastPoolProcess.IsPortOpen(bp), $"backend port {bp} still accepts connections after Ctrl-C"));
        var leftovers = ProcessesUsing(directory);
        Assert.True(leftovers.Count == 0, "processes of the sandbox still running: " + string.Join("; ", leftovers));
        return directory;
    }

    /// <summary>
    /// When the test failed half-way (or fastpool had to be SIGKILLed), PostgreSQL servers started by this
    /// test may still run: kill them (every process whose command line or working directory is in the sandbox,
    /// with its children) and delete the directory,
    /// so a failure here never leaks servers into the rest of the run.
    /// </summary>
    private static void CleanUpAfterFailure(string? directory)
    {
        if (string.IsNullOrEmpty(directory) || !directory.Contains("fastpool-sandbox-", StringComparison.Ordinal))
        {
            return;
        }

        foreach (var (pid, _) in ProcessesUsingWithPid(directory))
        {
            try
            {
                using var process = System.Diagnostics.Process.GetProcessById(pid);
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
            catch (ArgumentException)
            {
            }
            catch (InvalidOperationException)
            {
            }
            catch (System.ComponentModel.Win32Exception)
            {
            }
        }

        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static List<string> ProcessesUsing(string directory) =>
        ProcessesUsingWithPid(directory).Select(x => x.Description).ToList();

    /// <summary>Processes whose command line or working directory points into <paramref name="directory"/>.</summary>
    private static List<(int Pid, string Description)> ProcessesUsingWithPid(string directory)
    {
        var found = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            var name = Path.GetFileName(dir);
            if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim();
                string? cwd = null;
                try
                {
                    cwd = new FileInfo(Path.Combine(dir, "cwd")).LinkTarget;
                }
                catch (UnauthorizedAccessException)
                {
                }
                catch (IOException)
                {
                }

                if (cmdline.Contains(directory, StringComparison.Ordinal) || (cwd is not null && cwd.StartsWith(directory, StringComparison.Ordinal)))
                {
                    found.Add((pid, $"{pid}: {cmdline} (cwd {cwd})"));
                }
            }
            catch (IOException)
            {
                // Exited while we looked.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return found;
    }

    [GeneratedRegex(@"^Sandbox directory:\s*(\S+)\s*$", RegexOptions.Multiline)]
    private static partial Regex SandboxDirectoryLine();

    [GeneratedRegex(@"^\s*(primary|standby)\s+127\.0\.0\.1:(\d+)", RegexOptions.Multiline)]
    private static partial Regex BackendPortLine();
}
