using System.Text.Json.Serialization;
using FastPool.Load.Run;

namespace FastPool.Load.Report;

/// <summary>The run as written to report.json (snake_case). The layout depends only on the inputs, so runs compare.</summary>
internal sealed record LoadReport(
    int Version,
    string Tool,
    DateTimeOffset StartedAt,
    string Scenario,
    string Model,
    int Clients,
    double? Rate,
    long? TransactionsLimit,
    double? DurationS,
    double WarmupS,
    double SliceS,
    int Seed,
    string Machine,
    IReadOnlyList<TargetResult> Targets);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(LoadReport))]
internal sealed partial class ReportJsonContext : JsonSerializerContext;
