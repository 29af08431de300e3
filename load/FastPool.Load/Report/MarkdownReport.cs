using System.Globalization;
using System.Text;

namespace FastPool.Load.Report;

/// <summary>report.md: the run's parameters, one table row per target, errors by SQLSTATE and the plots.</summary>
internal static class MarkdownReport
{
    public static string Render(LoadReport report, IReadOnlyList<string> plots)
    {
        var sb = new StringBuilder();
        sb.Append("# fastpool-load: ").Append(report.Scenario).Append("\n\n");
        sb.Append(Inv($"- model: {report.Model}, clients: {report.Clients}"))
          .Append(report.Rate is { } rate ? Inv($", rate: {rate}/s per target") : string.Empty)
          .Append('\n');
        sb.Append(Inv($"- duration: {(report.DurationS is { } d ? d + " s" : "until the transaction count")}"))
          .Append(report.TransactionsLimit is { } n ? Inv($", transactions: {n}") : string.Empty)
          .Append(Inv($", warm-up: {report.WarmupS} s, slice: {report.SliceS} s"))
          .Append('\n');
        sb.Append("- started: ").Append(report.StartedAt.ToString("u", CultureInfo.InvariantCulture))
          .Append(", machine: ").Append(report.Machine).Append("\n\n");

        sb.Append("| target | transactions | errors | tps | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n");
        sb.Append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        foreach (var t in report.Targets)
        {
            var l = t.LatencyMs;
            sb.Append(Inv($"| {t.Name} | {t.Transactions} | {t.Errors} | {t.Tps:F1} | {l.P50:F3} | {l.P90:F3} | {l.P99:F3} | {l.P999:F3} | {l.Max:F3} |\n"));
        }

        if (report.Targets.Any(t => t.Errors > 0))
        {
            sb.Append("\n## Errors by SQLSTATE\n\n| target | SQLSTATE | count |\n| --- | --- | ---: |\n");
            foreach (var t in report.Targets)
            {
                foreach (var (code, count) in t.ErrorsBySqlstate)
                {
                    sb.Append(Inv($"| {t.Name} | {code} | {count} |\n"));
                }
            }
        }

        if (plots.Count > 0)
        {
            sb.Append("\n## Plots\n\n");
            foreach (var plot in plots)
            {
                sb.Append("![").Append(Path.GetFileNameWithoutExtension(plot)).Append("](").Append(plot).Append(")\n\n");
            }
        }

        return sb.ToString();
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
