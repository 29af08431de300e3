using System.Diagnostics;
using System.Globalization;
using FastPool.Load.Run;
using Spectre.Console;

namespace FastPool.Load.Live;

/// <summary>
/// The console view while a run is going: one row per target with its phase, transactions, throughput over the
/// last refresh, cumulative p50/p99 and errors. Only on an interactive terminal; otherwise a line per phase change.
/// </summary>
internal sealed class LiveView : IAsyncDisposable
{
    private static readonly TimeSpan _refresh = TimeSpan.FromMilliseconds(500);

    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private LiveView(Func<CancellationToken, Task> loop) => _loop = loop(_stop.Token);

    public static LiveView Start(RunSettings settings, IReadOnlyList<TargetRun> targets, TextWriter log)
    {
        var interactive = settings.Live && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        return interactive
            ? new LiveView(ct => RunLiveAsync(targets, ct))
            : new LiveView(ct => RunPlainAsync(targets, log, ct));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }

    private static async Task RunLiveAsync(IReadOnlyList<TargetRun> targets, CancellationToken ct)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("fastpool-load");
        foreach (var column in new[] { "target", "phase", "transactions", "tps", "p50 ms", "p99 ms", "errors" })
        {
            table.AddColumn(new TableColumn(column).RightAligned());
        }

        var last = new long[targets.Count];
        var lastTime = Stopwatch.GetTimestamp();
        await AnsiConsole.Live(table).AutoClear(false).StartAsync(async ctx =>
        {
            while (true)
            {
                var now = Stopwatch.GetTimestamp();
                var seconds = Math.Max(1e-3, Stopwatch.GetElapsedTime(lastTime, now).TotalSeconds);
                lastTime = now;
                table.Rows.Clear();
                for (var i = 0; i < targets.Count; i++)
                {
                    var stats = targets[i].Stats;
                    var transactions = stats.Transactions;
                    var tps = (transactions - last[i]) / seconds;
                    last[i] = transactions;
                    var (p50, p99) = stats.LivePercentiles();
                    table.AddRow(
                        Markup.Escape(targets[i].Spec.Name),
                        targets[i].Phase,
                        transactions.ToString("N0", CultureInfo.InvariantCulture),
                        tps.ToString("N0", CultureInfo.InvariantCulture),
                        p50.ToString("F2", CultureInfo.InvariantCulture),
                        p99.ToString("F2", CultureInfo.InvariantCulture),
                        stats.Errors == 0 ? "0" : $"[red]{stats.Errors.ToString(CultureInfo.InvariantCulture)}[/]");
                }

                ctx.Refresh();
                if (ct.IsCancellationRequested)
                {
                    return;
                }

                try
                {
                    await Task.Delay(_refresh, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // One more pass draws the final numbers.
                }
            }
        }).ConfigureAwait(false);
    }

    private static async Task RunPlainAsync(IReadOnlyList<TargetRun> targets, TextWriter log, CancellationToken ct)
    {
        var phases = new string[targets.Count];
        while (!ct.IsCancellationRequested)
        {
            for (var i = 0; i < targets.Count; i++)
            {
                var phase = targets[i].Phase;
                if (phase != phases[i] && phase is "warmup" or "measure")
                {
                    await log.WriteLineAsync($"{targets[i].Spec.Name}: {phase}").ConfigureAwait(false);
                }

                phases[i] = phase is "waiting" ? phases[i] : phase;
            }

            try
            {
                await Task.Delay(_refresh, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
