using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace FastPool.Sandbox;

/// <summary>Outcome of one finished child process.</summary>
internal sealed record ProcessResult(string CommandLine, int ExitCode, string StandardOutput, string StandardError);

/// <summary>A child process could not be started, timed out, or exited non-zero.</summary>
internal sealed class ProcessRunException : Exception
{
    public ProcessRunException()
    {
    }

    public ProcessRunException(string message)
        : base(message)
    {
    }

    public ProcessRunException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ProcessRunException(string message, ProcessResult? result, Exception? innerException = null)
        : base(message, innerException)
    {
        Result = result;
    }

    /// <summary>The captured output, when the process got as far as exiting.</summary>
    public ProcessResult? Result { get; }
}

/// <summary>
/// Runs external tools (initdb, pg_ctl, psql, ...) without a shell: arguments go through
/// <see cref="ProcessStartInfo.ArgumentList"/>, so paths with spaces or quotes need no escaping.
/// </summary>
internal static class ProcessRunner
{
    /// <summary>Used when the caller gives no timeout; generous because initdb on a slow CI disk can take a while.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);

    // A daemonising grandchild that kept our pipes open would make ReadToEnd wait forever;
    // once the direct child has exited we only give the pipes this long to reach EOF.
    private static readonly TimeSpan _outputDrainTimeout = TimeSpan.FromSeconds(5);

    private static readonly Lazy<bool> _isRoot = new(DetectRoot);

    /// <summary>
    /// True when this process runs as uid 0. The PostgreSQL server binaries refuse to run as root,
    /// so callers wrap them with <see cref="AsPostgresUser"/> in that case.
    /// </summary>
    public static bool IsRoot => _isRoot.Value;

    /// <summary>
    /// Wraps a server-side command so it runs as the <c>postgres</c> OS user when we are root
    /// (initdb/pg_ctl/postgres/pg_basebackup exit immediately otherwise); unchanged when not root.
    /// </summary>
    public static (string FileName, IReadOnlyList<string> Arguments) AsPostgresUser(string fileName, IEnumerable<string> arguments)
    {
        if (!IsRoot)
        {
            return (fileName, arguments.ToArray());
        }

        var wrapped = new List<string> { "-u", "postgres", "--", fileName };
        wrapped.AddRange(arguments);
        return ("runuser", wrapped);
    }

    /// <summary>
    /// Runs <paramref name="fileName"/> with <paramref name="arguments"/>, captures stdout/stderr and waits
    /// up to <paramref name="timeout"/>. Throws <see cref="ProcessRunException"/> (carrying the command line and
    /// stderr) when the process cannot start, times out, or — if <paramref name="throwOnError"/> — exits non-zero.
    /// </summary>
    public static async Task<ProcessResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        TimeSpan? timeout = null,
        string? workingDirectory = null,
        bool throwOnError = true,
        CancellationToken cancellationToken = default)
    {
        var args = arguments.ToArray();
        var commandLine = FormatCommandLine(fileName, args);
        using var process = StartProcess(fileName, args, workingDirectory, commandLine);

        var stdoutTask = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderrTask = process.StandardError.ReadToEndAsync(CancellationToken.None);
        var effectiveTimeout = timeout ?? DefaultTimeout;

        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutCts.CancelAfter(effectiveTimeout);
        try
        {
            await process.WaitForExitAsync(timeoutCts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            KillTree(process);
            cancellationToken.ThrowIfCancellationRequested();
            var partialErr = await DrainAsync(stderrTask).ConfigureAwait(false);
            throw new ProcessRunException(
                $"Command timed out after {effectiveTimeout.TotalSeconds:0.#} s: {commandLine}{FormatStderr(partialErr)}");
        }

        var stdout = await DrainAsync(stdoutTask).ConfigureAwait(false);
        var stderr = await DrainAsync(stderrTask).ConfigureAwait(false);
        return Finish(commandLine, process.ExitCode, stdout, stderr, throwOnError);
    }

    /// <summary>
    /// Blocking variant for places where async is not an option (AppDomain.ProcessExit handlers).
    /// Same semantics as <see cref="RunAsync"/>.
    /// </summary>
    public static ProcessResult Run(
        string fileName,
        IEnumerable<string> arguments,
        TimeSpan? timeout = null,
        string? workingDirectory = null,
        bool throwOnError = true)
    {
        var args = arguments.ToArray();
        var commandLine = FormatCommandLine(fileName, args);
        using var process = StartProcess(fileName, args, workingDirectory, commandLine);

        var stdoutTask = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderrTask = process.StandardError.ReadToEndAsync(CancellationToken.None);
        var effectiveTimeout = timeout ?? DefaultTimeout;

        if (!process.WaitForExit(effectiveTimeout))
        {
            KillTree(process);
            throw new ProcessRunException(
                $"Command timed out after {effectiveTimeout.TotalSeconds:0.#} s: {commandLine}");
        }

        var stdout = stdoutTask.Wait(_outputDrainTimeout) ? stdoutTask.Result : string.Empty;
        var stderr = stderrTask.Wait(_outputDrainTimeout) ? stderrTask.Result : string.Empty;
        return Finish(commandLine, process.ExitCode, stdout, stderr, throwOnError);
    }

    /// <summary>Shell-like rendering of a command, for error messages and logs only (never executed).</summary>
    public static string FormatCommandLine(string fileName, IEnumerable<string> arguments)
    {
        var sb = new StringBuilder(Quote(fileName));
        foreach (var arg in arguments)
        {
            sb.Append(' ').Append(Quote(arg));
        }

        return sb.ToString();
    }

    private static Process StartProcess(string fileName, string[] args, string? workingDirectory, string commandLine)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        if (workingDirectory is not null)
        {
            psi.WorkingDirectory = workingDirectory;
        }

        // libpq honours PGHOST/PGPORT/PGSERVICE/PGOPTIONS/...; a developer's environment must not
        // silently redirect our tools to some other server, so drop them all — we pass -h/-p/-U explicitly.
        var inherited = psi.Environment.Keys.Where(k => k.StartsWith("PG", StringComparison.Ordinal)).ToList();
        foreach (var key in inherited)
        {
            psi.Environment.Remove(key);
        }

        var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (Win32Exception ex)
        {
            process.Dispose();
            throw new ProcessRunException($"Could not start {commandLine}: {ex.Message}", null, ex);
        }

        // Nothing we run reads stdin; closing it makes e.g. psql fail fast instead of waiting for input.
        try
        {
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The child may already have exited; that is fine.
        }

        return process;
    }

    private static ProcessResult Finish(string commandLine, int exitCode, string stdout, string stderr, bool throwOnError)
    {
        var result = new ProcessResult(commandLine, exitCode, stdout, stderr);
        if (throwOnError && exitCode != 0)
        {
            throw new ProcessRunException(
                $"Command failed with exit code {exitCode}: {commandLine}{FormatStderr(stderr)}",
                result);
        }

        return result;
    }

    private static async Task<string> DrainAsync(Task<string> readTask)
    {
        var finished = await Task.WhenAny(readTask, Task.Delay(_outputDrainTimeout)).ConfigureAwait(false);
        return finished == readTask ? await readTask.ConfigureAwait(false) : string.Empty;
    }

    private static void KillTree(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited between the timeout and the kill.
        }
        catch (Win32Exception)
        {
            // Best effort: nothing more we can do about a process we may not signal.
        }
    }

    private static string FormatStderr(string stderr)
    {
        var trimmed = stderr.Trim();
        return trimmed.Length == 0 ? string.Empty : Environment.NewLine + trimmed;
    }

    private static string Quote(string value)
    {
        if (value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@%+".Contains(c, StringComparison.Ordinal)))
        {
            return value;
        }

        return "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }

    private static bool DetectRoot()
    {
        if (string.Equals(Environment.UserName, "root", StringComparison.Ordinal))
        {
            return true;
        }

        // Environment.UserName comes from the passwd entry; a uid-0 account under another name
        // (or no passwd entry at all in some containers) still needs the runuser treatment.
        try
        {
            var result = Run("id", ["-u"], TimeSpan.FromSeconds(10), throwOnError: false);
            return result.ExitCode == 0 && result.StandardOutput.Trim() == "0";
        }
        catch (ProcessRunException)
        {
            return false;
        }
    }
}
