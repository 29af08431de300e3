using FastPool.Load.Live;

namespace FastPool.Load.Run;

/// <summary>
/// Runs a whole load test: preflight every target, connect the clients, warm up, measure; targets take turns
/// in slices (round-robin) so each sees the same machine conditions, and only measured slices are recorded.
/// </summary>
internal sealed class LoadRunner(RunSettings settings, TextWriter log)
{
    private static readonly TimeSpan _unbounded = TimeSpan.FromDays(1);

    public async Task<IReadOnlyList<TargetResult>> RunAsync(CancellationToken ct)
    {
        var targets = new List<TargetRun>();
        try
        {
            for (var i = 0; i < settings.Targets.Count; i++)
            {
                var target = new TargetRun(settings, i);
                targets.Add(target);
                target.Scale = await Preflight.CheckAsync(target, settings, ct).ConfigureAwait(false);
            }

            foreach (var target in targets)
            {
                await OpenAsync(target, ct).ConfigureAwait(false);
            }

            await using var live = LiveView.Start(settings, targets, log);
            if (settings.Warmup > TimeSpan.Zero)
            {
                await RunPhaseAsync(targets, settings.Warmup, measured: false, ct).ConfigureAwait(false);
            }

            await RunPhaseAsync(targets, settings.Duration ?? _unbounded, measured: true, ct).ConfigureAwait(false);
            foreach (var target in targets)
            {
                target.Phase = "done";
            }
        }
        finally
        {
            foreach (var target in targets)
            {
                await target.DisposeAsync().ConfigureAwait(false);
            }
        }

        return targets.Select(t => t.Stats.ToResult(t.Spec.Name)).ToList();
    }

    private static async Task OpenAsync(TargetRun target, CancellationToken ct)
    {
        try
        {
            await target.OpenClientsAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException)
        {
            throw new Cli.UsageException(
                $"target '{target.Spec.Name}' ({target.Spec.Describe()}): cannot open {target.Spec.Name}'s client sessions: {Preflight.Describe(ex)}", ex);
        }
    }

    private async Task RunPhaseAsync(List<TargetRun> targets, TimeSpan perTarget, bool measured, CancellationToken ct)
    {
        // One target: a single slice. Several: turns of --slice each until every target had its time.
        var slice = targets.Count == 1 ? perTarget : settings.Slice;
        var done = new TimeSpan[targets.Count];
        var progress = true;
        while (progress && !ct.IsCancellationRequested)
        {
            progress = false;
            for (var i = 0; i < targets.Count && !ct.IsCancellationRequested; i++)
            {
                var target = targets[i];
                var left = perTarget - done[i];
                if (left <= TimeSpan.Zero || (measured && target.BudgetExhausted))
                {
                    continue;
                }

                var length = left < slice ? left : slice;
                target.Phase = measured ? "measure" : "warmup";
                await target.RunSliceAsync(length, measured, ct).ConfigureAwait(false);
                target.Phase = "waiting";
                done[i] += length;
                progress = true;
            }
        }
    }
}
