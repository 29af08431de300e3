using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using FastPool.Load.Run;

namespace FastPool.Load.Report;

/// <summary>Writes DIR/report.json, DIR/report.md, the PNG plots and (with --raw-samples) DIR/samples-NAME.txt.</summary>
internal static class ReportWriter
{
    public static LoadReport Build(RunSettings settings, DateTimeOffset startedAt, IReadOnlyList<TargetResult> results) => new(
        Version: 1,
        Tool: "fastpool-load " + typeof(ReportWriter).Assembly.GetName().Version?.ToString(3),
        StartedAt: startedAt,
        Scenario: settings.Scenario.Name,
        Model: settings.Model,
        Clients: settings.Clients,
        Rate: settings.Rate,
        TransactionsLimit: settings.Transactions,
        DurationS: settings.Duration?.TotalSeconds,
        WarmupS: settings.Warmup.TotalSeconds,
        SliceS: settings.Slice.TotalSeconds,
        Seed: settings.Seed,
        Machine: $"{Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}",
        Targets: results);

    public static async Task<string> WriteAsync(LoadReport report, string directory, CancellationToken ct)
    {
        Directory.CreateDirectory(directory);
        var json = JsonSerializer.Serialize(report, ReportJsonContext.Default.LoadReport);
        await File.WriteAllTextAsync(Path.Combine(directory, "report.json"), json + "\n", ct).ConfigureAwait(false);

        foreach (var target in report.Targets)
        {
            if (target.RawSamplesUs is { } samples)
            {
                await File.WriteAllLinesAsync(
                    Path.Combine(directory, $"samples-{target.Name}.txt"),
                    samples.Select(s => s.ToString(CultureInfo.InvariantCulture)),
                    ct).ConfigureAwait(false);
            }
        }

        var plots = Plots.Write(report, directory);
        var markdown = MarkdownReport.Render(report, plots);
        await File.WriteAllTextAsync(Path.Combine(directory, "report.md"), markdown, ct).ConfigureAwait(false);
        return markdown;
    }
}
