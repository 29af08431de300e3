using System.CommandLine;
using FastPool.Hosting;

namespace FastPool;

/// <summary>The composition root: command line, config loading, logging, signals, and the proxy's lifetime.</summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        // Socket completions run on the epoll thread instead of hopping to the thread pool, so a forwarded
        // message is read, scanned and sent on one thread (measured: about 1.4x select-only TPS on 2 cores).
        // The runtime reads this variable once, when the first socket is used, so it must be set before that.
        if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
        {
            Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
        }

        // With inline completions the epoll threads do all the forwarding. One per two cores leaves the other
        // cores to PostgreSQL and the clients on the same machine, and lets each epoll_wait return more events:
        // on 2 cores, one thread used about 15% less CPU per transaction than two at the same TPS.
        if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT") is null)
        {
            Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT",
                Math.Max(1, Environment.ProcessorCount / 2).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var configArgument = new Argument<string?>("config")
        {
            Description = "Path to a pgbouncer.ini (FastPool's own settings go in its [fastpool] section). Without it, FastPool starts a sandbox.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        // System.CommandLine would take an unknown "--option" as the optional config path; report it as the
        // unknown option it is (exit 1, like every other usage error) instead of as an unreadable config (exit 2).
        configArgument.Validators.Add(result =>
        {
            foreach (var token in result.Tokens)
            {
                if (token.Value.StartsWith('-'))
                {
                    result.AddError($"Unrecognized option '{token.Value}'.");
                }
            }
        });
        var sandboxOption = new Option<bool>("--sandbox")
        {
            Description = "Start a throwaway PostgreSQL primary and streaming standby in a temp directory and listen in front of them; everything is removed on Ctrl-C.",
        };
        var portOption = new Option<int?>("--port", "-p")
        {
            Description = "Sandbox only: the port FastPool listens on (default 6432, or a free port when 6432 is taken).",
        };
        var daemonOption = new Option<bool>("--daemon", "-d")
        {
            Description = "Run in the background, as PgBouncer's -d: returns once FastPool accepts connections (log to logfile).",
        };
        var verboseOption = new Option<bool>("--verbose", "-v") { Description = "More log output (debug level)." };
        var quietOption = new Option<bool>("--quiet", "-q") { Description = "Log only warnings and errors to stderr." };
        var userOption = new Option<string?>("--user", "-u")
        {
            Description = "Started as root: run as this user (and its groups), as PgBouncer's -u, before reading the configuration.",
        };

        var root = new RootCommand("FastPool: a PostgreSQL connection pooler, drop-in for PgBouncer.")
        {
            configArgument,
            sandboxOption,
            portOption,
            daemonOption,
            verboseOption,
            quietOption,
            userOption,
        };

        // PgBouncer spells it -V.
        foreach (var option in root.Options)
        {
            if (option is VersionOption)
            {
                option.Aliases.Add("-V");
            }
        }

        root.SetAction((parse, ct) =>
        {
            var options = new RunOptions(
                parse.GetValue(configArgument),
                parse.GetValue(sandboxOption),
                parse.GetValue(portOption),
                parse.GetValue(verboseOption),
                parse.GetValue(quietOption),
                parse.GetValue(daemonOption),
                parse.GetValue(userOption),
                args);
            return options.ConfigPath is null || options.Sandbox
                ? SandboxRunner.RunAsync(options)
                : ProxyRunner.RunAsync(options);
        });

        // fastpool cache install-triggers DATABASE [--config FILE]
        var triggerDatabase = new Argument<string>("DATABASE") { Description = "The database (entry name with --config) to install the triggers in." };
        var triggerConfig = new Option<string?>("--config", "-c") { Description = "A pgbouncer.ini: connect as its database entry does (else PGHOST/PGPORT/PGUSER/PGPASSWORD)." };
        var installTriggers = new Command("install-triggers", "Install statement-level triggers that tell FastPool about writes made directly on the server.")
        {
            triggerDatabase,
            triggerConfig,
        };
        installTriggers.SetAction((parse, ct) => Hosting.CacheCommand.InstallTriggersAsync(parse.GetValue(triggerDatabase)!, parse.GetValue(triggerConfig)));
        root.Subcommands.Add(new Command("cache", "Query result cache tools.") { installTriggers });

        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = true };
        return await root.Parse(args).InvokeAsync(config).ConfigureAwait(false);
    }
}

internal sealed record RunOptions(string? ConfigPath, bool Sandbox, int? Port, bool Verbose, bool Quiet, bool Daemon, string? User, string[] Args);

/// <summary>Exit codes, stable for scripts and service managers.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>Could not start: a port in use, the sandbox failed, an unexpected error.</summary>
    public const int StartFailed = 1;

    /// <summary>The configuration file is missing or invalid.</summary>
    public const int ConfigInvalid = 2;
}
