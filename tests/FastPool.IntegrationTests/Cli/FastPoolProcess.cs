using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace FastPool.IntegrationTests.Cli;

/// <summary>
/// The real <c>fastpool</c> executable from the test output directory, run as a user runs it: arguments,
/// environment, stdout/stderr captured as they come, POSIX signals, exit code. Disposing always ends it.
/// </summary>
internal sealed class FastPoolProcess : IAsyncDisposable
{
    public const int SIGINT = 2;
    public const int SIGQUIT = 3;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    private static readonly Lazy<(string FileName, string[] Prefix)> _command = new(ResolveCommand);

    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Lock _outputLock = new();
    private readonly StringBuilder _notifications = new();
    private Socket? _notifySocket;
    private string? _notifyPath;

    static FastPoolProcess()
    {
        EnsureStopSignalsNotIgnored();
    }

    private FastPoolProcess(Process process, string commandLine)
    {
        _process = process;
        CommandLine = commandLine;
    }

    public string CommandLine { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Stdout
    {
        get
        {
            lock (_outputLock)
            {
                return _stdout.ToString();
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_outputLock)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Everything received on the NOTIFY_SOCKET this helper gave the process (sd_notify messages).</summary>
    public string Notifications
    {
        get
        {
            lock (_outputLock)
            {
                return _notifications.ToString();
            }
        }
    }

    /// <summary>
    /// Starts <c>fastpool</c> with <paramref name="args"/>; <paramref name="environment"/> entries with a null value
    /// are removed. Unless the caller sets NOTIFY_SOCKET itself, the process gets a NOTIFY_SOCKET of this helper,
    /// so tests can wait for READY=1 like systemd does (<see cref="WaitForReadyAsync"/>).
    /// </summary>
    public static FastPoolProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null, string? workingDirectory = null)
    {
        var (fileName, prefix) = _command.Value;
        var psi = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory ?? AppContext.BaseDirectory,
        };
        foreach (var a in prefix.Concat(args))
        {
            psi.ArgumentList.Add(a);
        }

        // A test run under systemd must not make fastpool notify the test runner's unit.
        psi.Environment.Remove("NOTIFY_SOCKET");
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                if (value is null)
                {
                    psi.Environment.Remove(key);
                }
                else
                {
                    psi.Environment[key] = value;
                }
            }
        }

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var commandLine = string.Join(' ', psi.ArgumentList.Prepend(fileName));
        var result = new FastPoolProcess(process, commandLine);
        if (environment is null || !environment.ContainsKey("NOTIFY_SOCKET"))
        {
            result.ListenForNotifications();
            psi.Environment["NOTIFY_SOCKET"] = result._notifyPath;
        }

        process.OutputDataReceived += (_, e) => result.Append(result._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => result.Append(result._stderr, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return result;
    }

    public static FastPoolProcess Start(params string[] args) => Start((IEnumerable<string>)args);

    /// <summary>Runs <c>fastpool</c> to completion (for commands that exit by themselves) and returns it for its output.</summary>
    public static async Task<FastPoolProcess> RunToExitAsync(string[] args, TimeSpan? timeout = null)
    {
        var p = Start(args);
        await p.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(30));
        return p;
    }

    /// <summary>Waits for the exit and for the output pipes to drain; fails with the captured output on timeout.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            // Also waits for the redirected streams to reach EOF, so the output is complete afterwards.
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!_process.HasExited)
        {
            throw new TimeoutException($"fastpool did not exit within {timeout.TotalSeconds:0.#} s\n{Describe()}");
        }
        catch (OperationCanceledException)
        {
            // Exited, but something it started still holds the output pipes open: what we have is all we get.
        }

        return _process.ExitCode;
    }

    /// <summary>True if the process is still running after <paramref name="duration"/>.</summary>
    public async Task<bool> StaysRunningAsync(TimeSpan duration)
    {
        using var cts = new CancellationTokenSource(duration);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return false;
        }
        catch (OperationCanceledException)
        {
            return !_process.HasExited;
        }
    }

    /// <summary>Waits until stdout or stderr (as chosen) contains <paramref name="text"/>.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan timeout, bool stderr = false)
    {
        var sw = Stopwatch.StartNew();
        while (!(stderr ? Stderr : Stdout).Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited)
            {
                // Give the pipe readers a moment to deliver the last lines.
                _process.WaitForExit(5000);
                if ((stderr ? Stderr : Stdout).Contains(text, StringComparison.Ordinal))
                {
                    return;
                }

                throw new InvalidOperationException($"fastpool exited ({_process.ExitCode}) before printing \"{text}\"\n{Describe()}");
            }

            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"fastpool did not print \"{text}\" within {timeout.TotalSeconds:0.#} s\n{Describe()}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>
    /// Waits for the port to accept and for READY=1 on NOTIFY_SOCKET: the point from which FastPool promises to
    /// handle SIGTERM/SIGINT/SIGQUIT (it is sent after the signal handlers are installed).
    /// </summary>
    public async Task WaitForStartAsync(int port, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        await WaitForPortAsync(port, timeout);
        await WaitForReadyAsync(timeout - sw.Elapsed);
    }

    /// <summary>Waits until fastpool sends READY=1 to the NOTIFY_SOCKET this helper gave it.</summary>
    public async Task WaitForReadyAsync(TimeSpan timeout)
    {
        if (_notifySocket is null)
        {
            throw new InvalidOperationException("this process was started with the caller's own NOTIFY_SOCKET");
        }

        var sw = Stopwatch.StartNew();
        while (!Notifications.Split('\n').Contains("READY=1"))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"fastpool exited ({_process.ExitCode}) before sending READY=1\n{Describe()}");
            }

            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"fastpool did not send READY=1 within {timeout.TotalSeconds:0.#} s\n{Describe()}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Waits until 127.0.0.1:<paramref name="port"/> accepts a TCP connection; fails early if fastpool exits.</summary>
    public async Task WaitForPortAsync(int port, TimeSpan timeout, TimeSpan? pollInterval = null)
    {
        var interval = pollInterval ?? TimeSpan.FromMilliseconds(50);
        var sw = Stopwatch.StartNew();
        while (!IsPortOpen(port))
        {
            if (_process.HasExited)
            {
                _process.WaitForExit(5000);
                throw new InvalidOperationException($"fastpool exited ({_process.ExitCode}) before listening on port {port}\n{Describe()}");
            }

            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"fastpool did not listen on port {port} within {timeout.TotalSeconds:0.#} s\n{Describe()}");
            }

            if (interval > TimeSpan.Zero)
            {
                await Task.Delay(interval);
            }
            else
            {
                await Task.Yield();
            }
        }
    }

    /// <summary>Sends a POSIX signal, as <c>kill -SIG pid</c> would.</summary>
    public void Signal(int signal)
    {
        if (kill(_process.Id, signal) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (!_process.HasExited)
            {
                throw new Win32Exception(errno, $"kill({_process.Id}, {signal}) failed");
            }
        }
    }

    /// <summary>Command line, exit state and everything captured so far, for assertion messages.</summary>
    public string Describe() =>
        $"$ {CommandLine}\n[{(_process.HasExited ? "exit code " + _process.ExitCode.ToString(CultureInfo.InvariantCulture) : "running, pid " + _process.Id.ToString(CultureInfo.InvariantCulture))}]\n" +
        $"--- stdout ---\n{Stdout}--- stderr ---\n{Stderr}--- NOTIFY_SOCKET ---\n{Notifications}--------------";

    public override string ToString() => Describe();

    /// <summary>
    /// Ends the process if it still runs: SIGQUIT first (immediate shutdown, which still removes a sandbox),
    /// then SIGKILL of the whole tree.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                Signal(SIGQUIT);
                if (await StaysRunningAsync(TimeSpan.FromSeconds(15)))
                {
                    _process.Kill(entireProcessTree: true);
                    _process.WaitForExit(10_000);
                }
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        finally
        {
            _process.Dispose();
            _notifySocket?.Dispose();
            if (_notifyPath is not null)
            {
                File.Delete(_notifyPath);
            }
        }
    }

    /// <summary>A TCP port nobody listens on right now (bound to 0 and released).</summary>
    /// <summary>How fastpool is run here: the apphost, or the host with the dll (for scripts that start it themselves).</summary>
    public static (string FileName, string[] Prefix) Command => _command.Value;

    public static int GetFreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public static bool IsPortOpen(int port)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token).AsTask().GetAwaiter().GetResult();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Runs psql (as a user would) and returns exit code and output; never throws for a non-zero exit.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> PsqlAsync(int port, string sql, string database = "postgres", string user = "postgres")
    {
        var psql = PsqlPath();
        var psi = new ProcessStartInfo(psql)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var a in new[] { "-X", "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-U", user, "-d", database, "-Atc", sql })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["PGCONNECT_TIMEOUT"] = "10";
        psi.Environment.Remove("PGPASSWORD");
        psi.Environment.Remove("PGSERVICE");
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"psql -p {port} -c \"{sql}\" did not finish within 30 s");
        }

        return (p.ExitCode, await stdout, await stderr);
    }

    private static string PsqlPath()
    {
        foreach (var dir in new[] { "/usr/lib/postgresql/15/bin", "/usr/bin", "/usr/local/bin" })
        {
            var candidate = Path.Combine(dir, "psql");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return "psql";
    }

    /// <summary>Binds a datagram socket (as systemd does for Type=notify) and collects what arrives on it.</summary>
    private void ListenForNotifications()
    {
        // Short path in /tmp: sun_path holds 107 bytes, and the test output directory can be deep.
        _notifyPath = Path.Combine(Path.GetTempPath(), "fp-notify-" + Guid.NewGuid().ToString("N")[..12] + ".sock");
        _notifySocket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _notifySocket.Bind(new UnixDomainSocketEndPoint(_notifyPath));
        var socket = _notifySocket;
        _ = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            while (true)
            {
                int n;
                try
                {
                    n = await socket.ReceiveAsync(buffer, SocketFlags.None);
                }
                catch (SocketException)
                {
                    return;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }

                lock (_outputLock)
                {
                    _notifications.Append(Encoding.UTF8.GetString(buffer, 0, n)).Append('\n');
                }
            }
        });
    }

    private void Append(StringBuilder target, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_outputLock)
        {
            target.Append(line).Append('\n');
        }
    }

    /// <summary>
    /// The apphost <c>fastpool</c> next to the tests when it runs here; otherwise <c>dotnet fastpool.dll</c>
    /// with the same dotnet that runs the tests.
    /// </summary>
    private static (string FileName, string[] Prefix) ResolveCommand()
    {
        var apphost = Path.Combine(AppContext.BaseDirectory, "fastpool");
        if (File.Exists(apphost))
        {
            try
            {
                using var probe = Process.Start(new ProcessStartInfo(apphost, "--version")
                {
                    UseShellExecute = false,
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                })!;
                probe.StandardOutput.ReadToEnd();
                probe.StandardError.ReadToEnd();
                if (probe.WaitForExit(30_000) && probe.ExitCode == 0)
                {
                    return (apphost, []);
                }
            }
            catch (Win32Exception)
            {
                // Not executable (e.g. lost its mode bit when copied): fall back to the dll.
            }
        }

        var dll = Path.Combine(AppContext.BaseDirectory, "fastpool.dll");
        var host = Environment.ProcessPath;
        var dotnet = host is not null && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet";
        return (dotnet, [dll]);
    }

    /// <summary>
    /// A process started in the background by a non-interactive shell (as CI scripts often do) inherits
    /// SIGINT and SIGQUIT as ignored, and the .NET runtime keeps inherited-ignored SIGINT/SIGQUIT ignored,
    /// so children started from here would never see our SIGINT/SIGQUIT. Restore the default disposition
    /// (only where it is "ignore", so no handler of the test host is touched); children inherit it.
    /// </summary>
    private static void EnsureStopSignalsNotIgnored()
    {
        ulong ignored;
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
            if (line is null || !ulong.TryParse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ignored))
            {
                return;
            }
        }
        catch (IOException)
        {
            return;
        }

        foreach (var sig in new[] { SIGINT, SIGQUIT })
        {
            if ((ignored & (1UL << (sig - 1))) != 0)
            {
                signal(sig, IntPtr.Zero); // SIG_DFL
            }
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    [DllImport("libc")]
    private static extern IntPtr signal(int signum, IntPtr handler);
}
