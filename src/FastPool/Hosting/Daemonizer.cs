using System.Diagnostics;
using System.Net.Sockets;
using FastPool.Proxy.Configuration;

namespace FastPool.Hosting;

/// <summary>
/// PgBouncer's -d: run in the background and return once the pooler accepts connections, so existing init
/// scripts that call `pgbouncer -d` keep working. .NET cannot fork, so the daemon is this executable started
/// again in a new session (setsid) without -d, with its standard streams on /dev/null (logs go to logfile).
/// </summary>
internal static class Daemonizer
{
    public static async Task<int> StartAsync(string[] args, ProxyConfig config)
    {
        var self = Environment.ProcessPath;
        if (self is null)
        {
            await Console.Error.WriteLineAsync("FATAL cannot find the path of this executable to start the daemon").ConfigureAwait(false);
            return ExitCodes.StartFailed;
        }

        if (string.IsNullOrEmpty(config.LogFile))
        {
            await Console.Error.WriteLineAsync("WARNING -d without logfile: the daemon's log lines are discarded").ConfigureAwait(false);
        }

        // Success is judged by the port accepting: if something already does (another FastPool or PgBouncer on this
        // ini, or any other program), the daemon could only fail to listen, and the port would still look ready.
        if (await AcceptsAsync(config).ConfigureAwait(false))
        {
            await Console.Error.WriteLineAsync($"FATAL another process already accepts connections on port {config.ListenPort}; is a pooler already running?").ConfigureAwait(false);
            return ExitCodes.StartFailed;
        }

        var psi = new ProcessStartInfo("setsid") { UseShellExecute = false };
        psi.ArgumentList.Add("sh");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec \"$0\" \"$@\" </dev/null >/dev/null 2>&1");
        psi.ArgumentList.Add(self);
        foreach (var arg in args)
        {
            if (arg is not ("-d" or "--daemon"))
            {
                psi.ArgumentList.Add(arg);
            }
        }

        using var child = Process.Start(psi);
        if (child is null)
        {
            return ExitCodes.StartFailed;
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (child.HasExited)
            {
                await Console.Error.WriteLineAsync($"FATAL the daemon exited with code {child.ExitCode}; see {config.LogFile ?? "its log"}").ConfigureAwait(false);
                return child.ExitCode == 0 ? ExitCodes.StartFailed : child.ExitCode;
            }

            if (await AcceptsAsync(config).ConfigureAwait(false))
            {
                return ExitCodes.Ok;
            }

            await Task.Delay(100).ConfigureAwait(false);
        }

        await Console.Error.WriteLineAsync("FATAL the daemon did not start listening within 30 s").ConfigureAwait(false);
        return ExitCodes.StartFailed;
    }

    private static async Task<bool> AcceptsAsync(ProxyConfig config)
    {
        try
        {
            if (config.ListenAddresses.Count > 0)
            {
                var host = config.ListenAddresses[0] == "*" ? "127.0.0.1" : config.ListenAddresses[0];
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(host, config.ListenPort).ConfigureAwait(false);
                return true;
            }

            if (!string.IsNullOrEmpty(config.UnixSocketDir))
            {
                using var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await unix.ConnectAsync(new UnixDomainSocketEndPoint(Path.Combine(config.UnixSocketDir, $".s.PGSQL.{config.ListenPort}"))).ConfigureAwait(false);
                return true;
            }
        }
        catch (SocketException)
        {
        }

        return false;
    }
}
