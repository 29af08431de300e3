using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using FastPool.Proxy;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Transport;
using Microsoft.Extensions.Logging;

namespace FastPool.Hosting;

/// <summary>Runs the proxy for one configuration until a signal stops it (PgBouncer's signal meanings).</summary>
internal static class ProxyRunner
{
    public static async Task<int> RunAsync(RunOptions options)
    {
        if (options.User is { } user && UserSwitch.AssumeIdentity(user) is { } refused)
        {
            await Console.Error.WriteLineAsync("FATAL " + refused).ConfigureAwait(false);
            return ExitCodes.StartFailed;
        }

        var result = ConfigLoader.Load(options.ConfigPath!);
        foreach (var warning in result.Warnings)
        {
            await Console.Error.WriteLineAsync("WARNING " + warning).ConfigureAwait(false);
        }

        if (result.Config is null)
        {
            foreach (var error in result.Errors)
            {
                await Console.Error.WriteLineAsync("FATAL " + error).ConfigureAwait(false);
            }

            await Console.Error.WriteLineAsync($"FATAL configuration {options.ConfigPath} is invalid; FastPool did not start").ConfigureAwait(false);
            return ExitCodes.ConfigInvalid;
        }

        if (options.Daemon)
        {
            return await Daemonizer.StartAsync(options.Args, result.Config).ConfigureAwait(false);
        }

        OwnSession.EnterWhenDetached();
        return await RunAsync(result.Config, options, onStarted: null).ConfigureAwait(false);
    }

    /// <summary>Runs with a ready configuration; <paramref name="onStarted"/> runs once the listeners are bound.</summary>
    public static async Task<int> RunAsync(ProxyConfig config, RunOptions options, Action<ProxyServer>? onStarted)
    {
        var level = options.Verbose || config.Verbose > 0 ? LogLevel.Debug : options.Quiet ? LogLevel.Warning : LogLevel.Information;
        // Disposed by this method, after the factory: the factory does not dispose a provider instance it was
        // given, and only Dispose flushes the lines still queued (a FATAL line just before exiting).
        PgBouncerStyleLoggerProvider opened;
        try
        {
            opened = new PgBouncerStyleLoggerProvider(config.LogFile, level);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"FATAL cannot open logfile {config.LogFile}: {StartupErrors.Describe(ex)}").ConfigureAwait(false);
            return ExitCodes.StartFailed;
        }

        using var logProvider = opened;
        using var loggerFactory = LoggerFactory.Create(b =>
        {
            b.SetMinimumLevel(level);
            b.AddProvider(logProvider);
        });
        var logger = loggerFactory.CreateLogger("FastPool");

        ProxyServer created;
        try
        {
            created = new ProxyServer(config, loggerFactory);
        }
        catch (TransportUnavailableException ex)
        {
            logger.LogCritical("{Message}", ex.Message);
            return ExitCodes.StartFailed;
        }

        await using var server = created;
        var stop = new TaskCompletionSource<ShutdownMode>(TaskCreationOptions.RunContinuationsAsynchronously);
        int signals = 0;
        void OnStopSignal(PosixSignalContext ctx, ShutdownMode first)
        {
            ctx.Cancel = true;
            if (Interlocked.Increment(ref signals) == 1)
            {
                stop.TrySetResult(first);
            }
            else
            {
                // A second SIGINT/SIGTERM turns a waiting safe shutdown into an immediate one, as in PgBouncer.
                server.AbortClients();
            }
        }

        // Handlers go in before the listener opens: a SIGTERM sent as soon as the port accepts must be a clean stop.
        // SIGTERM: wait for clients to disconnect ("super safe", SHUTDOWN WAIT_FOR_CLIENTS); SIGINT: wait for the
        // transactions under way, then close everyone (SHUTDOWN WAIT_FOR_SERVERS; in session mode clients hold
        // their servers, so it waits for them to leave); SIGQUIT: immediate. PgBouncer 1.23+ semantics.
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => OnStopSignal(ctx, ShutdownMode.Safe));
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => OnStopSignal(ctx, ShutdownMode.WaitForServers));
        using var quit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, ctx => OnStopSignal(ctx, ShutdownMode.Immediate));
        // SIGHUP: re-read the config file, as PgBouncer does. Off the signal thread: the reload reads files and
        // logs; a broken file is rejected (and logged) by the reload itself, and the running config stays.
        // The reload also reopens the log file, so logrotate's "kill -HUP" works as with PgBouncer.
        server.BeforeReload = logProvider.Reopen;
        using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
        {
            ctx.Cancel = true;
            _ = Task.Run(server.Reload);
        });

        // SIGUSR1 and SIGUSR2: PAUSE and RESUME, as PgBouncer. Without a handler their default action ends the process.
        using var usr1 = PosixSignalRegistration.Create(SigUsr1, ctx =>
        {
            ctx.Cancel = true;
            server.PauseAll();
        });
        using var usr2 = PosixSignalRegistration.Create(SigUsr2, ctx =>
        {
            ctx.Cancel = true;
            server.ResumeAll();
        });

        // The admin console's SHUTDOWN stops the server itself; this only ends the wait below (with the same mode, so
        // joining that stop does not cut a graceful one short).
        _ = server.ShutdownRequested.ContinueWith(t => stop.TrySetResult(t.Result), TaskScheduler.Default);

        // The pid file first: another instance that holds it (and is alive) means this one must not start, unless
        // so_reuseport asks for exactly that (a rolling restart); and a pid file that cannot be written stops the
        // start before any port opens.
        if (!string.IsNullOrEmpty(config.PidFile))
        {
            if (!config.SoReuseport && RunningInstance(config.PidFile) is { } other)
            {
                logger.LogCritical("pidfile {Path} exists and process {Pid} is running: another instance running? (so_reuseport = 1 lets two share the port)", config.PidFile, other);
                return ExitCodes.StartFailed;
            }

            try
            {
                WritePidFile(config.PidFile);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                logger.LogCritical("cannot write pidfile {Path}: {Reason}", config.PidFile, StartupErrors.Describe(ex));
                return ExitCodes.StartFailed;
            }
        }

        try
        {
            server.Start();
        }
        catch (SocketException ex)
        {
            logger.LogCritical("could not listen on {Address}:{Port}: {Message}", string.Join(',', config.ListenAddresses), config.ListenPort, ex.Message);
            DeletePidFile(config.PidFile);
            return ExitCodes.StartFailed;
        }

        onStarted?.Invoke(server);
        SystemdNotify.Send("READY=1\nSTATUS=accepting connections\nMAINPID=" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        var mode = await stop.Task.ConfigureAwait(false);
        SystemdNotify.Send("STOPPING=1");
        await server.StopAsync(mode).ConfigureAwait(false);
        DeletePidFile(config.PidFile);
        return ExitCodes.Ok;
    }

    // Linux signal numbers (signal(7)); .NET takes raw numbers cast to PosixSignal.
    private const PosixSignal SigUsr1 = (PosixSignal)10;
    private const PosixSignal SigUsr2 = (PosixSignal)12;

    /// <summary>The pid in <paramref name="path"/> when it is another process that is still running; null otherwise (a stale file is overwritten).</summary>
    private static int? RunningInstance(string path)
    {
        try
        {
            if (!File.Exists(path) || !int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
                || pid == Environment.ProcessId || pid <= 0)
            {
                return null;
            }

            return Directory.Exists("/proc/" + pid.ToString(CultureInfo.InvariantCulture)) ? pid : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static bool IsOurs(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim() == Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static void WritePidFile(string? path)
    {
        if (!string.IsNullOrEmpty(path))
        {
            File.WriteAllText(path, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        }
    }

    /// <summary>
    /// Removes the pid file if it is still this process's: in a rolling restart (so_reuseport) the successor has
    /// already written its own pid there, and the file must stay for it.
    /// </summary>
    private static void DeletePidFile(string? path)
    {
        if (!string.IsNullOrEmpty(path) && IsOurs(path))
        {
            try
            {
                File.Delete(path);
            }
            catch (IOException)
            {
            }
        }
    }
}
