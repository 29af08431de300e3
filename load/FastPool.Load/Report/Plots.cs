using ScottPlot;

namespace FastPool.Load.Report;

/// <summary>PNG plots with ScottPlot: throughput over time and latency percentile curves, one series per target.</summary>
internal static class Plots
{
    private const int Width = 900;
    private const int Height = 500;

    /// <summary>Writes the plots into <paramref name="directory"/> and returns their file names.</summary>
    public static IReadOnlyList<string> Write(LoadReport report, string directory)
    {
        var files = new List<string>();
        if (report.Targets.All(t => t.ThroughputPerSecond.Length == 0))
        {
            return files;
        }

        var throughput = new Plot();
        foreach (var target in report.Targets.Where(t => t.ThroughputPerSecond.Length > 0))
        {
            double[] xs = [.. Enumerable.Range(0, target.ThroughputPerSecond.Length).Select(i => (double)i)];
            double[] ys = [.. target.ThroughputPerSecond.Select(v => (double)v)];
            var series = throughput.Add.Scatter(xs, ys);
            series.LegendText = target.Name;
        }

        throughput.Title($"{report.Scenario}: throughput");
        throughput.XLabel("measured time (s)");
        throughput.YLabel("transactions per second");
        throughput.Axes.SetLimitsY(0, report.Targets.Max(t => t.ThroughputPerSecond.DefaultIfEmpty(0).Max()) * 1.1 + 1);
        throughput.ShowLegend(Alignment.LowerRight);
        files.Add(Save(throughput, directory, "throughput.png"));

        // x = -log10(1 - p): the usual HdrHistogram percentile plot, which spreads out the tail.
        var latency = new Plot();
        foreach (var target in report.Targets.Where(t => t.PercentileCurve.Count > 0))
        {
            double[] xs = [.. target.PercentileCurve.Select(p => -Math.Log10(1 - (p.Percentile / 100)))];
            double[] ys = [.. target.PercentileCurve.Select(p => p.LatencyMs)];
            var series = latency.Add.Scatter(xs, ys);
            series.LegendText = target.Name;
            series.MarkerSize = 0;
        }

        latency.Title($"{report.Scenario}: latency by percentile");
        latency.XLabel("percentile");
        latency.YLabel("latency (ms)");
        double[] ticks = [0, 1, 2, 3, 4, 5];
        string[] labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
        latency.Axes.Bottom.SetTicks(ticks, labels);
        latency.ShowLegend(Alignment.UpperLeft);
        files.Add(Save(latency, directory, "latency.png"));
        return files;
    }

    private static string Save(Plot plot, string directory, string name)
    {
        plot.SavePng(Path.Combine(directory, name), Width, Height);
        return name;
    }
}
