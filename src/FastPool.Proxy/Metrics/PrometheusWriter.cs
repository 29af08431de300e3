using System.Globalization;
using System.Text;

namespace FastPool.Proxy.Metrics;

/// <summary>
/// Writes the Prometheus text exposition format (version 0.0.4): for each family a HELP and a TYPE line, then
/// all its samples together, label values escaped (backslash, double quote, line feed).
/// </summary>
internal sealed class PrometheusWriter(StringBuilder text)
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public void Family(string name, string type, string help)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
    }

    /// <summary>A family with one sample: its header and its value.</summary>
    public void Single(string name, string type, string help, double value, params ReadOnlySpan<(string Name, string Value)> labels)
    {
        Family(name, type, help);
        Sample(name, value, labels);
    }

    public void Sample(string name, double value, params ReadOnlySpan<(string Name, string Value)> labels)
    {
        text.Append(name);
        if (labels.Length > 0)
        {
            text.Append('{');
            for (int i = 0; i < labels.Length; i++)
            {
                if (i > 0)
                {
                    text.Append(',');
                }

                text.Append(labels[i].Name).Append("=\"");
                AppendEscaped(labels[i].Value);
                text.Append('"');
            }

            text.Append('}');
        }

        text.Append(' ').Append(Number(value)).Append('\n');
    }

    /// <summary>A histogram's _bucket series (cumulative, ending with +Inf), _sum (seconds) and _count.</summary>
    public void Histogram(string name, LatencyHistogram histogram, params ReadOnlySpan<(string Name, string Value)> labels)
    {
        // Read the buckets once: _count must equal the +Inf bucket within one scrape.
        var cumulative = histogram.CumulativeCounts();
        long sumMicros = histogram.SumMicroseconds;
        Span<(string, string)> withLe = new (string, string)[labels.Length + 1];
        labels.CopyTo(withLe);
        var bounds = LatencyHistogram.BoundsSeconds;
        for (int i = 0; i < cumulative.Length; i++)
        {
            withLe[^1] = ("le", i < bounds.Length ? Number(bounds[i]) : "+Inf");
            Sample(name + "_bucket", cumulative[i], withLe);
        }

        Sample(name + "_sum", sumMicros / 1_000_000.0, labels);
        Sample(name + "_count", cumulative[^1], labels);
    }

    public static string Number(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : double.IsNaN(value) ? "NaN"
        : value.ToString("R", CultureInfo.InvariantCulture);

    private void AppendEscaped(string value)
    {
        foreach (char c in value)
        {
            switch (c)
            {
                case '\\':
                    text.Append("\\\\");
                    break;
                case '"':
                    text.Append("\\\"");
                    break;
                case '\n':
                    text.Append("\\n");
                    break;
                default:
                    text.Append(c);
                    break;
            }
        }
    }
}
