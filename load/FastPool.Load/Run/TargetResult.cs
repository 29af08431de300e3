namespace FastPool.Load.Run;

/// <summary>Latency percentiles in milliseconds (HdrHistogram, 3 significant digits).</summary>
internal sealed record LatencySummary(double P50, double P90, double P99, double P999, double Max, double Mean);

internal sealed record PercentilePoint(double Percentile, double LatencyMs);

/// <summary>The measured outcome for one target; the shape of one entry of report.json's <c>targets</c>.</summary>
internal sealed record TargetResult(
    string Name,
    long Transactions,
    long Errors,
    double Tps,
    double DurationS,
    LatencySummary LatencyMs,
    SortedDictionary<string, long> ErrorsBySqlstate,
    long[] ThroughputPerSecond,
    List<PercentilePoint> PercentileCurve,
    [property: System.Text.Json.Serialization.JsonIgnore] long[]? RawSamplesUs);
