using System.CommandLine;
using System.CommandLine.Parsing;
using FastPool.Load.Init;
using FastPool.Load.Report;
using FastPool.Load.Run;
using FastPool.Load.Scenarios;

namespace FastPool.Load.Cli;

/// <summary>The command line of fastpool-load: <c>run</c> and <c>init</c>. Exit codes: 0 ok, 1 failure, 2 bad input.</summary>
internal static class LoadApp
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int BadInput = 2;

    private const string ScriptHelp = """
        Custom script (pgbench-like; the whole file is one transaction): SQL statements ending with ';' at the end
        of a line (may span lines); '\set NAME EXPR' lines with integer + - * / ( ), :variables and random(lo, hi)
        (inclusive); ':NAME' in SQL is sent as a bigint parameter ($n), not inside '...' strings (::casts are fine);
        built-ins :scale (rows of pgbench_branches, or --scale) and :client_id; '--' lines are comments.
        """;

    public static Task<int> InvokeAsync(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("fastpool-load: drives PostgreSQL endpoints (FastPool, PgBouncer, PostgreSQL, ...) with load and reports throughput and latency.")
        {
            BuildRunCommand(output, error),
            BuildInitCommand(output, error),
        };

        var config = new InvocationConfiguration
        {
            Output = output,
            Error = error,
            EnableDefaultExceptionHandler = false,

            // Ctrl-C stops the run; the report of what was measured is still written, which takes a moment.
            ProcessTerminationTimeout = TimeSpan.FromSeconds(30),
        };
        return root.Parse(args).InvokeAsync(config);
    }

    private static Command BuildRunCommand(TextWriter output, TextWriter error)
    {
        var targets = new Option<string[]>("--target", "-t")
        {
            Description = "NAME=CONNSTRING (Npgsql format), repeatable; several targets take turns in slices.",
            Required = true,
        };
        var scenario = new Option<string?>("--scenario", "-s")
        {
            Description = "select | extended | prepared | tpcb | connect | crowd | mixed | cache | script (default select, or script with --script).",
        };
        scenario.AcceptOnlyFromAmong(BuiltInScenarios.Names);
        var script = new Option<FileInfo?>("--script", "-f") { Description = "A custom SQL script (implies --scenario script). " + ScriptHelp };
        var mode = new Option<string?>("--mode", "-M")
        {
            Description = "inline | extended | prepared: how statements are sent (select/extended/prepared fix their own).",
        };
        mode.AcceptOnlyFromAmong("inline", "extended", "prepared");
        var clients = new Option<int>("--clients", "-c") { Description = "Concurrent clients (sessions) per target.", DefaultValueFactory = _ => 1 };
        var duration = DurationOption("--duration", "-T", "Measured time per target, e.g. 10s, 2m (default 10s unless --transactions).");
        var warmup = DurationOption("--warmup", "-w", "Warm-up per target before measuring, not recorded (default 0).");
        var slice = DurationOption("--slice", null, "With several targets: length of each target's turn (default 1s).");
        var rate = new Option<double?>("--rate", "-R") { Description = "Open model: fixed arrivals per second per target; latency counts from the scheduled start." };
        var transactions = new Option<long?>("--transactions", "-n") { Description = "Stop each target after this many transactions (successful or failed)." };
        var readRatio = new Option<double>("--read-ratio") { Description = "mixed: share of read transactions, 0..1.", DefaultValueFactory = _ => 0.8 };
        var active = new Option<int?>("--active") { Description = "crowd: clients that run transactions; the others stay connected and idle (default clients/20)." };
        var scale = new Option<long?>("--scale") { Description = "The :scale of scripts (default: rows of pgbench_branches on each target)." };
        var seed = new Option<int>("--seed") { Description = "Seed of the random parameters.", DefaultValueFactory = _ => 1 };
        var outDir = new Option<DirectoryInfo>("--out", "-o") { Description = "Directory for report.json, report.md and the PNG plots.", Required = true };
        var noLive = new Option<bool>("--no-live") { Description = "No live table (it is off anyway when output is not a terminal)." };
        var rawSamples = new Option<bool>("--raw-samples") { Description = "Also write every latency sample (µs, one per line) to samples-NAME.txt." };

        var command = new Command("run", "Run a scenario against one or more targets and write the report.")
        {
            targets, scenario, script, mode, clients, duration, warmup, slice, rate, transactions, readRatio, active, scale, seed, outDir, noLive, rawSamples,
        };
        command.SetAction(async (parse, ct) =>
        {
            return await GuardAsync(error, async () =>
            {
                var settings = BuildSettings(parse);
                var startedAt = DateTimeOffset.UtcNow;
                var results = await new LoadRunner(settings, output).RunAsync(ct).ConfigureAwait(false);
                var report = ReportWriter.Build(settings, startedAt, results);
                var markdown = await ReportWriter.WriteAsync(report, settings.OutputDirectory, CancellationToken.None).ConfigureAwait(false);
                await output.WriteLineAsync(markdown.TrimEnd()).ConfigureAwait(false);
                await output.WriteLineAsync($"report: {Path.Combine(settings.OutputDirectory, "report.md")}").ConfigureAwait(false);
                return Ok;
            }).ConfigureAwait(false);
        });
        return command;

        RunSettings BuildSettings(ParseResult parse)
        {
            var scriptFile = parse.GetValue(script);
            var scenarioName = parse.GetValue(scenario) ?? (scriptFile is null ? "select" : BuiltInScenarios.Custom);
            if (scriptFile is not null && scenarioName != BuiltInScenarios.Custom)
            {
                throw new UsageException($"--script runs a custom script; it cannot be combined with --scenario {scenarioName}.");
            }

            Script? custom = null;
            if (scriptFile is not null)
            {
                if (!scriptFile.Exists)
                {
                    throw new UsageException($"--script {scriptFile.FullName}: no such file.");
                }

                custom = ScriptParser.Parse(scriptFile.Name, File.ReadAllText(scriptFile.FullName));
            }

            var clientCount = parse.GetValue(clients);
            var ratio = parse.GetValue(readRatio);
            Require(clientCount >= 1, "--clients must be at least 1.");
            Require(ratio is >= 0 and <= 1, "--read-ratio must be between 0 and 1.");
            Require(parse.GetValue(rate) is null or > 0, "--rate must be positive.");
            Require(parse.GetValue(transactions) is null or > 0, "--transactions must be positive.");
            Require(parse.GetValue(duration) is null or { Ticks: > 0 }, "--duration must be positive.");
            Require(parse.GetValue(slice) is null or { TotalMilliseconds: >= 10 }, "--slice must be at least 10ms.");
            var modeName = parse.GetValue(mode);
            StatementMode? statementMode = modeName is null ? null : Enum.Parse<StatementMode>(modeName, ignoreCase: true);

            var specs = parse.GetValue(targets)!.Select(TargetSpec.Parse).ToList();
            var duplicate = specs.GroupBy(t => t.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
            Require(duplicate is null, $"--target name '{duplicate?.Key}' is used twice.");

            var limit = parse.GetValue(transactions);
            return new RunSettings(
                specs,
                BuiltInScenarios.Create(scenarioName, clientCount, ratio, parse.GetValue(active), custom, statementMode),
                clientCount,
                parse.GetValue(duration) ?? (limit is null ? TimeSpan.FromSeconds(10) : null),
                parse.GetValue(warmup) ?? TimeSpan.Zero,
                parse.GetValue(rate),
                limit,
                parse.GetValue(slice) ?? TimeSpan.FromSeconds(1),
                parse.GetValue(scale),
                parse.GetValue(seed),
                parse.GetValue(outDir)!.FullName,
                Live: !parse.GetValue(noLive),
                RawSamples: parse.GetValue(rawSamples));
        }
    }

    private static Command BuildInitCommand(TextWriter output, TextWriter error)
    {
        var targets = new Option<string[]>("--target", "-t") { Description = "NAME=CONNSTRING, repeatable.", Required = true };
        var scale = new Option<int>("--scale", "-s") { Description = "pgbench scale: 100,000 accounts per unit.", DefaultValueFactory = _ => 1 };
        var command = new Command("init", "Create and fill the pgbench tables (the layout of pgbench -i) on each target.") { targets, scale };
        command.SetAction((parse, ct) => GuardAsync(error, async () =>
        {
            Require(parse.GetValue(scale) >= 1, "--scale must be at least 1.");
            foreach (var target in parse.GetValue(targets)!.Select(TargetSpec.Parse))
            {
                await PgbenchInit.RunAsync(target, parse.GetValue(scale), output, ct).ConfigureAwait(false);
            }

            return Ok;
        }));
        return command;
    }

    /// <summary>Turns every failure into one line on stderr and an exit code; never a stack trace.</summary>
    private static async Task<int> GuardAsync(TextWriter error, Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is UsageException or ScriptException)
        {
            await error.WriteLineAsync("fastpool-load: " + ex.Message).ConfigureAwait(false);
            return BadInput;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("fastpool-load: cancelled").ConfigureAwait(false);
            return Failed;
        }
#pragma warning disable CA1031 // The last line of defence: one readable line instead of a stack trace.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            await error.WriteLineAsync($"fastpool-load: {ex.GetType().Name}: {Preflight.Describe(ex)}").ConfigureAwait(false);
            return Failed;
        }
    }

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new UsageException(message);
        }
    }

    private static Option<TimeSpan?> DurationOption(string name, string? alias, string description)
    {
        var option = alias is null ? new Option<TimeSpan?>(name) : new Option<TimeSpan?>(name, alias);
        option.Description = description;
        option.CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : string.Empty;
            if (DurationParser.TryParse(text, out var value))
            {
                return value;
            }

            result.AddError($"{name}: '{text}' is not a duration (e.g. 500ms, 10s, 2m).");
            return null;
        };
        return option;
    }
}
