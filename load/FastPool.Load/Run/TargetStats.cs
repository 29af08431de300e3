using System.Diagnostics;
using HdrHistogram;

namespace FastPool.Load.Run;

/// <summary>
/// Measurements of one target: latency histogram (µs), per-second throughput on the target's own measured
/// clock (slices of other targets do not count), errors by SQLSTATE, and optionally every raw sample.
/// Recorded from many workers; one lock, held for a few hundred nanoseconds per transaction.
/// </summary>
internal sealed class TargetStats(bool keepSamples)
{
    /// <summary>Largest latency the histogram tracks: one hour in µs; longer ones are clamped.</summary>
    public const long HighestMicroseconds = 3_600_000_000;

    private readonly Lock _lock = new();
    private readonly LongHistogram _histogram = new(HighestMicroseconds, 3);
    private readonly List<long> _perSecond = [];
    private readonly SortedDictionary<string, long> _errors = new(StringComparer.Ordinal);
    private readonly List<long>? _samples = keepSamples ? [] : null;
    private long _measuredTicksBefore;
    private long _sliceStart;
    private long _transactions;
    private long _errorCount;

    public long Transactions => Interlocked.Read(ref _transactions);

    public long Errors => Interlocked.Read(ref _errorCount);

    public TimeSpan MeasuredTime => Stopwatch.GetElapsedTime(0, _measuredTicksBefore);

    public void BeginSlice(long timestamp) => _sliceStart = timestamp;

    public void EndSlice(long timestamp) => _measuredTicksBefore += timestamp - _sliceStart;

    public void RecordSuccess(long intendedStart, long end)
    {
        var micros = Math.Clamp((end - intendedStart) * 1_000_000 / Stopwatch.Frequency, 1, HighestMicroseconds);
        lock (_lock)
        {
            _histogram.RecordValue(micros);
            _samples?.Add(micros);
            Bucket(end)++;
            _transactions++;
        }
    }

    public void RecordError(string code, long end)
    {
        lock (_lock)
        {
            _errors[code] = _errors.GetValueOrDefault(code) + 1;
            _ = Bucket(end);
            _errorCount++;
        }
    }

    /// <summary>Cumulative p50/p99 in ms for the live view.</summary>
    public (double P50, double P99) LivePercentiles()
    {
        lock (_lock)
        {
            return _histogram.TotalCount == 0
                ? (0, 0)
                : (_histogram.GetValueAtPercentile(50) / 1000.0, _histogram.GetValueAtPercentile(99) / 1000.0);
        }
    }

    public TargetResult ToResult(string name)
    {
        lock (_lock)
        {
            var seconds = MeasuredTime.TotalSeconds;
            var latency = _histogram.TotalCount == 0
                ? new LatencySummary(0, 0, 0, 0, 0, 0)
                : new LatencySummary(
                    Ms(_histogram.GetValueAtPercentile(50)),
                    Ms(_histogram.GetValueAtPercentile(90)),
                    Ms(_histogram.GetValueAtPercentile(99)),
                    Ms(_histogram.GetValueAtPercentile(99.9)),
                    Ms(_histogram.GetMaxValue()),
                    Math.Round(_histogram.GetMean() / 1000.0, 3));
            var curve = _histogram.TotalCount == 0
                ? []
                : _histogram.Percentiles(5)
                    .Where(p => p.Percentile < 100)
                    .Select(p => new PercentilePoint(Math.Round(p.Percentile, 4), Ms(p.ValueIteratedTo)))
                    .ToList();
            return new TargetResult(
                name,
                _transactions,
                _errorCount,
                seconds > 0 ? Math.Round(_transactions / seconds, 1) : 0,
                Math.Round(seconds, 3),
                latency,
                new SortedDictionary<string, long>(_errors, StringComparer.Ordinal),
                FullSeconds(seconds),
                curve,
                _samples?.ToArray());
        }
    }

    // Only whole measured seconds: the bucket after the end holds just the transactions still in flight then.
    private long[] FullSeconds(double seconds)
    {
        var whole = Math.Min(_perSecond.Count, (int)Math.Floor(seconds));
        return whole == 0 ? [.. _perSecond] : [.. _perSecond.Take(whole)];
    }

    // The histogram's values are µs; reports are in ms with µs resolution.
    private static double Ms(long micros) => micros / 1000.0;

    private ref long Bucket(long end)
    {
        var second = (int)((_measuredTicksBefore + Math.Max(0, end - _sliceStart)) / Stopwatch.Frequency);
        while (_perSecond.Count <= second)
        {
            _perSecond.Add(0);
        }

        return ref System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_perSecond)[second];
    }
}
