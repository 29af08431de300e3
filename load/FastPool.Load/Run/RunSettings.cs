using FastPool.Load.Cli;
using FastPool.Load.Scenarios;

namespace FastPool.Load.Run;

/// <summary>Everything <c>fastpool-load run</c> was asked to do, validated.</summary>
internal sealed record RunSettings(
    IReadOnlyList<TargetSpec> Targets,
    Scenario Scenario,
    int Clients,
    TimeSpan? Duration,
    TimeSpan Warmup,
    double? Rate,
    long? Transactions,
    TimeSpan Slice,
    long? Scale,
    int Seed,
    string OutputDirectory,
    bool Live,
    bool RawSamples)
{
    /// <summary>Closed model: clients run back to back. Open model: arrivals at a fixed rate (per target).</summary>
    public string Model => Rate is null ? "closed" : "open";
}
