namespace FastPool.Proxy.Metrics;

/// <summary>
/// A fixed-bucket histogram of durations, cheap enough for the forwarding path: one bucket scan over a small
/// array and two Interlocked adds per observation, no allocation. Bucket bounds are fixed (Prometheus
/// histograms cannot change their buckets between scrapes anyway).
/// </summary>
internal sealed class LatencyHistogram
{
    /// <summary>Upper bounds (inclusive, in seconds) of the buckets; one more bucket holds everything above.</summary>
    public static readonly double[] BoundsSeconds =
        [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    private static readonly long[] s_boundsMicroseconds = [.. BoundsSeconds.Select(s => (long)Math.Round(s * 1_000_000))];

    // Counters 0..Bounds are the buckets (the last one above every bound), then the sum; striped per loop thread.
    private static readonly int Buckets = BoundsSeconds.Length + 1;
    private static readonly int SumCounter = Buckets;
    private readonly StripedCounters _counters = new(Buckets + 1);

    public long SumMicroseconds => _counters.Read(SumCounter);

    /// <summary>Observations so far (the sum of the buckets: no separate counter to keep in step).</summary>
    public long Count
    {
        get
        {
            long total = 0;
            for (int i = 0; i < Buckets; i++)
            {
                total += _counters.Read(i);
            }

            return total;
        }
    }

    public void Observe(TimeSpan elapsed) => Observe(Math.Max(0, elapsed.Ticks / TimeSpan.TicksPerMicrosecond));

    public void Observe(long microseconds)
    {
        var bounds = s_boundsMicroseconds;
        int i = 0;
        while (i < bounds.Length && microseconds > bounds[i])
        {
            i++;
        }

        int stripe = _counters.Stripe;
        _counters.Add(stripe, i, 1);
        _counters.Add(stripe, SumCounter, microseconds);
    }

    /// <summary>Cumulative counts per bound (the last is +Inf, i.e. the total), as the exposition format wants them.</summary>
    public long[] CumulativeCounts()
    {
        var result = new long[Buckets];
        long running = 0;
        for (int i = 0; i < Buckets; i++)
        {
            running += _counters.Read(i);
            result[i] = running;
        }

        return result;
    }
}
