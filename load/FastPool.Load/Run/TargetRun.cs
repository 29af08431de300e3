using System.Diagnostics;
using FastPool.Load.Cli;
using FastPool.Load.Scenarios;
using Npgsql;

namespace FastPool.Load.Run;

/// <summary>
/// One target during a run: its data source, its clients (connected once, kept across slices) and its stats.
/// A slice lets every active client work until the slice ends; then the coordinator moves to the next target.
/// </summary>
internal sealed class TargetRun : IAsyncDisposable
{
    private const int OpenParallelism = 16;

    private readonly RunSettings _settings;
    private readonly int _index;
    private readonly ScriptClient?[] _clients;
    private long _remaining;

    public TargetRun(RunSettings settings, int index)
    {
        _settings = settings;
        _index = index;
        Spec = settings.Targets[index];
        Stats = new TargetStats(settings.RawSamples);

        // Every client is one server session of its own, as with pgbench -c; Npgsql's pool would otherwise
        // cap sessions at Max Pool Size and, for "connect", hide the connection cost being measured.
        var builder = new NpgsqlConnectionStringBuilder(Spec.ConnectionString) { Pooling = false };
        if (string.IsNullOrEmpty(builder.ApplicationName))
        {
            builder.ApplicationName = "fastpool-load";
        }

        DataSource = NpgsqlDataSource.Create(builder);
        _clients = new ScriptClient?[settings.Clients];
        _remaining = settings.Transactions ?? long.MaxValue;
    }

    public TargetSpec Spec { get; }

    /// <summary>pgbench scale of the target's tables (set by the preflight), the :scale of scripts.</summary>
    public long Scale { get; set; } = 1;

    public NpgsqlDataSource DataSource { get; }

    public TargetStats Stats { get; }

    /// <summary>"idle", "warmup" or "measure", for the live view.</summary>
    public string Phase { get; set; } = "idle";

    /// <summary>True once --transactions transactions (successful or not) were started.</summary>
    public bool BudgetExhausted => Interlocked.Read(ref _remaining) <= 0;

    private int ActiveClients => _settings.Scenario.ActiveClients ?? _settings.Clients;

    /// <summary>Opens every client's session (crowd: the idle ones too, which then just hold their connection).</summary>
    public async Task OpenClientsAsync(CancellationToken ct)
    {
        await Parallel.ForAsync(0, _clients.Length, new ParallelOptions { MaxDegreeOfParallelism = OpenParallelism, CancellationToken = ct }, async (i, token) =>
        {
            _clients[i] = await NewClientAsync(i, token).ConfigureAwait(false);
        }).ConfigureAwait(false);
    }

    /// <summary>Runs one slice of at most <paramref name="length"/>; returns when every worker has finished.</summary>
    public async Task RunSliceAsync(TimeSpan length, bool measured, CancellationToken ct)
    {
        var sink = measured ? Stats : new TargetStats(keepSamples: false);
        var start = Stopwatch.GetTimestamp();
        var end = length >= TimeSpan.FromDays(1) ? long.MaxValue : start + (long)(length.TotalSeconds * Stopwatch.Frequency);
        var slice = new Slice(start, end, _settings.Rate is { } rate ? (long)(Stopwatch.Frequency / rate) : 0);
        sink.BeginSlice(start);
        var workers = new Task[ActiveClients];
        for (var i = 0; i < workers.Length; i++)
        {
            var client = i;
            workers[i] = Task.Run(() => WorkAsync(client, slice, sink, measured, ct), CancellationToken.None);
        }

        await Task.WhenAll(workers).ConfigureAwait(false);
        sink.EndSlice(Stopwatch.GetTimestamp());
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            if (client is not null)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }
        }

        await DataSource.DisposeAsync().ConfigureAwait(false);
    }

    private async Task WorkAsync(int clientIndex, Slice slice, TargetStats sink, bool measured, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            long intended;
            if (slice.Interval == 0)
            {
                // Closed model: the next transaction starts when the previous one ends.
                intended = Stopwatch.GetTimestamp();
                if (intended >= slice.End)
                {
                    return;
                }
            }
            else
            {
                // Open model: arrival k is due at start + k * interval whether or not a client was free then;
                // latency counts from that due time, so a stalled server cannot hide its queue (coordinated omission).
                intended = slice.Start + (Interlocked.Increment(ref slice.NextArrival) - 1) * slice.Interval;
                if (intended >= slice.End)
                {
                    return;
                }

                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), intended);
                if (wait > TimeSpan.Zero)
                {
                    try
                    {
                        await Task.Delay(wait, ct).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
            }

            if (measured && Interlocked.Decrement(ref _remaining) < 0)
            {
                return;
            }

            await ExecuteOneAsync(clientIndex, intended, sink, ct).ConfigureAwait(false);
        }
    }

    private async Task ExecuteOneAsync(int clientIndex, long intended, TargetStats sink, CancellationToken ct)
    {
        try
        {
            var client = _clients[clientIndex];
            if (client is null || client.IsBroken)
            {
                if (client is not null)
                {
                    await client.DisposeAsync().ConfigureAwait(false);
                    _clients[clientIndex] = null;
                }

                client = _clients[clientIndex] = await NewClientAsync(clientIndex, ct).ConfigureAwait(false);
            }

            await client.ExecuteAsync(ct).ConfigureAwait(false);
            sink.RecordSuccess(intended, Stopwatch.GetTimestamp());
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopped by Ctrl-C: the interrupted transaction is neither a success nor an error.
        }
#pragma warning disable CA1031 // Any failure of one transaction is a measurement (an error by SQLSTATE), never a crash of the run.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            sink.RecordError(ErrorCode(ex), Stopwatch.GetTimestamp());
        }
    }

    private async Task<ScriptClient> NewClientAsync(int clientIndex, CancellationToken ct)
    {
        // A fixed seed per (run seed, target, client), so the same inputs draw the same keys.
        var client = new ScriptClient(_settings.Scenario, DataSource, clientIndex, Scale, new Random(unchecked((_settings.Seed * 1_000_003) + (_index * 65_537) + clientIndex)));
        try
        {
            await client.OpenAsync(ct).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The SQLSTATE, or a short name for failures without one (connection lost, timeout).</summary>
    internal static string ErrorCode(Exception ex) => ex switch
    {
        PostgresException pg => pg.SqlState,
        NpgsqlException { InnerException: TimeoutException } => "timeout",
        NpgsqlException { IsTransient: true } => "connection",
        NpgsqlException => "npgsql",
        TimeoutException => "timeout",
        _ => ex.GetType().Name,
    };

    private sealed class Slice(long start, long end, long interval)
    {
        public long NextArrival;

        public long Start { get; } = start;

        public long End { get; } = end;

        public long Interval { get; } = interval;
    }
}
