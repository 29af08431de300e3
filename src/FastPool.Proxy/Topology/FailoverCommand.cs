using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace FastPool.Proxy.Topology;

/// <summary>The values a failover_command or follow_primary_command template can name (Pgpool-II's placeholders).</summary>
internal sealed record FailoverCommandValues(Node Failed, string? FailedDataDir, Node? NewPrimary, string? NewPrimaryDataDir, Node? OldPrimary);

/// <summary>Runs failover_command / follow_primary_command: placeholders filled in, through /bin/sh, bounded in time, output logged.</summary>
internal static class FailoverCommand
{
    /// <summary>
    /// %d failed node id, %h its host, %p its port, %D its data directory, %m new primary id, %H its host,
    /// %r its port, %R its data directory, %P old primary id, %% a percent sign; anything else is kept as written.
    /// </summary>
    public static string Format(string template, FailoverCommandValues v)
    {
        var sb = new StringBuilder(template.Length + 32);
        for (int i = 0; i < template.Length; i++)
        {
            char c = template[i];
            if (c != '%' || i + 1 >= template.Length)
            {
                sb.Append(c);
                continue;
            }

            char p = template[++i];
            string? value = p switch
            {
                'd' => Id(v.Failed),
                'h' => v.Failed.Endpoint.Host,
                'p' => v.Failed.Endpoint.Port.ToString(CultureInfo.InvariantCulture),
                'D' => v.FailedDataDir ?? string.Empty,
                'm' => Id(v.NewPrimary),
                'H' => v.NewPrimary?.Endpoint.Host ?? string.Empty,
                'r' => v.NewPrimary?.Endpoint.Port.ToString(CultureInfo.InvariantCulture) ?? string.Empty,
                'R' => v.NewPrimaryDataDir ?? string.Empty,
                'P' => Id(v.OldPrimary),
                '%' => "%",
                _ => null,
            };
            if (value is null)
            {
                sb.Append('%').Append(p);
            }
            else
            {
                sb.Append(value);
            }
        }

        return sb.ToString();
    }

    // Pgpool-II writes -1 for "no such node"; scripts test for it.
    private static string Id(Node? node) => (node?.Id ?? -1).ToString(CultureInfo.InvariantCulture);

    /// <summary>Runs the command; its exit code, or null when it could not start or ran past the timeout (it is then killed).</summary>
    public static async Task<int?> RunAsync(string what, string command, TimeSpan timeout, ILogger logger, CancellationToken ct)
    {
        var start = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("no process");
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            Log.CommandFailed(logger, what, command, ex.Message);
            return null;
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            try
            {
                await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                    // Exited just now.
                }

                Log.CommandFailed(logger, what, command, $"still running after {timeout.TotalSeconds:0.###} s (failover_command_timeout); killed");
                return null;
            }

            var output = ((await stdout.ConfigureAwait(false)) + (await stderr.ConfigureAwait(false))).Trim();
            Log.CommandRan(logger, what, command, process.ExitCode, output.Length == 0 ? "(no output)" : output);
            return process.ExitCode;
        }
    }
}
