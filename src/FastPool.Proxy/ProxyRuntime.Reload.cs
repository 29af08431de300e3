using FastPool.Proxy.Configuration;

namespace FastPool.Proxy;

/// <summary>The outcome of a reload: applied, or rejected with the reason (the running configuration then stays).</summary>
public sealed record ReloadResult(bool Applied, string Message);

internal sealed partial class ProxyRuntime
{
    private readonly Lock _reloadLock = new();

    /// <summary>
    /// SIGHUP and the admin RELOAD: reads the config file again and swaps the snapshot in one step. A file with
    /// any error is rejected as a whole (ConfigLoader hands out no config then), so a half-edited file never
    /// half-applies. Nobody is disconnected: pools take new sizes and timeouts in place, and pools whose server
    /// changed drain (see PoolManager.ApplyConfig).
    /// </summary>
    /// <summary>Runs first in every reload (the host reopens its log file there, so log rotation works as with PgBouncer).</summary>
    public Action? BeforeReload { get; set; }

    public ReloadResult Reload()
    {
        BeforeReload?.Invoke();
        lock (_reloadLock)
        {
            var current = _config;
            var file = current.SourceFile;
            if (string.IsNullOrEmpty(file))
            {
                return new ReloadResult(false, "FastPool was started without a configuration file; there is nothing to reload");
            }

            ConfigLoadResult result;
            try
            {
                result = ConfigLoader.Load(file);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Log.ReloadRejected(Logger, file, ex.Message);
                return new ReloadResult(false, $"could not read {file}: {ex.Message}");
            }

            if (result.Config is null)
            {
                string reason = string.Join("; ", result.Errors.Select(e => e.ToString()));
                Log.ReloadRejected(Logger, file, reason);
                return new ReloadResult(false, "configuration rejected, the running one stays in effect: " + reason);
            }

            foreach (var warning in result.Warnings)
            {
                Log.ReloadWarning(Logger, warning.ToString());
            }

            ApplyLocked(KeepRestartOnlySettings(result.Config, current));
            Log.ReloadApplied(Logger, file);
            return new ReloadResult(true, "configuration reloaded from " + file);
        }
    }

    /// <summary>Swaps in a snapshot built from the current one (the admin SET command).</summary>
    public void Apply(Func<ProxyConfig, ProxyConfig> change)
    {
        lock (_reloadLock)
        {
            ApplyLocked(change(_config));
        }
    }

    private void ApplyLocked(ProxyConfig next)
    {
        // The snapshot goes first, so a client that logs in while pools are updated already sees the new entries.
        _config = next;
        Pools.ApplyConfig(next);
        ApplyCacheConfig(next);
        ConfigApplied?.Invoke(next);
    }

    /// <summary>
    /// Listening sockets, the pid file and the log file are set up once at start (as in PgBouncer): a reload keeps
    /// the running values and says so when the file asks for others.
    /// </summary>
    private ProxyConfig KeepRestartOnlySettings(ProxyConfig next, ProxyConfig current)
    {
        if (!next.ListenAddresses.SequenceEqual(current.ListenAddresses) || next.ListenPort != current.ListenPort)
        {
            Log.ReloadNeedsRestart(Logger, "listen_addr/listen_port");
        }

        if (next.UnixSocketDir != current.UnixSocketDir || next.UnixSocketMode != current.UnixSocketMode)
        {
            Log.ReloadNeedsRestart(Logger, "unix_socket_dir/unix_socket_mode");
        }

        if (next.SoReuseport != current.SoReuseport)
        {
            Log.ReloadNeedsRestart(Logger, "so_reuseport");
        }

        if (next.FastPool.MetricsListen != current.FastPool.MetricsListen)
        {
            Log.ReloadNeedsRestart(Logger, "metrics_listen");
        }

        if (next.LogFile != current.LogFile || next.PidFile != current.PidFile)
        {
            Log.ReloadNeedsRestart(Logger, "logfile/pidfile");
        }

        return next with
        {
            ListenAddresses = current.ListenAddresses,
            ListenPort = current.ListenPort,
            UnixSocketDir = current.UnixSocketDir,
            UnixSocketMode = current.UnixSocketMode,
            LogFile = current.LogFile,
            PidFile = current.PidFile,
            SoReuseport = current.SoReuseport,
            FastPool = next.FastPool with { MetricsListen = current.FastPool.MetricsListen },
        };
    }
}
