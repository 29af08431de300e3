using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace FastPool.IntegrationTests.Metrics;

/// <summary>One sample line: the series name (with _bucket/_sum/_count for histograms), its labels and value.</summary>
internal sealed record PromSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public bool Has(params (string Name, string Value)[] labels) =>
        labels.All(l => Labels.TryGetValue(l.Name, out var v) && v == l.Value);
}

/// <summary>A metric family: the name of its HELP/TYPE lines, its type and every sample that belongs to it.</summary>
internal sealed record PromFamily(string Name, string Type, string Help, List<PromSample> Samples);

/// <summary>
/// A strict parser of the Prometheus text exposition format 0.0.4, as Prometheus itself reads it: anything
/// it would reject (or that breaks the format's rules) fails the test with the line number. Checked:
/// metric and label names, label-value escapes, numbers, TYPE before the family's samples, one family's
/// samples together, no repeated series, histogram buckets cumulative with _count equal to the +Inf bucket.
/// </summary>
internal static partial class PrometheusText
{
    [GeneratedRegex("^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    private static partial Regex MetricName();

    [GeneratedRegex("^[a-zA-Z_][a-zA-Z0-9_]*$")]
    private static partial Regex LabelName();

    private static readonly HashSet<string> s_types = ["counter", "gauge", "histogram", "summary", "untyped"];

    public static Dictionary<string, PromFamily> Parse(string text)
    {
        var families = new Dictionary<string, PromFamily>(StringComparer.Ordinal);
        var finished = new HashSet<string>(StringComparer.Ordinal);
        var series = new HashSet<string>(StringComparer.Ordinal);
        var help = new Dictionary<string, string>(StringComparer.Ordinal);
        PromFamily? current = null;
        Assert.True(text.Length == 0 || text.EndsWith('\n'), "the exposition must end with a line feed");
        var lines = text.Split('\n');
        for (int n = 0; n < lines.Length - 1; n++)
        {
            var line = lines[n];
            string where = $"line {n + 1}: \"{line}\"";
            Assert.False(line.Contains('\r', StringComparison.Ordinal), where + ": carriage return");
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith('#'))
            {
                var parts = line.Split(' ', 4);
                if (parts.Length >= 3 && parts[1] == "HELP")
                {
                    Assert.Matches(MetricName(), parts[2]);
                    Assert.False(help.ContainsKey(parts[2]), where + ": second HELP");
                    help[parts[2]] = parts.Length == 4 ? parts[3] : string.Empty;
                }
                else if (parts.Length >= 3 && parts[1] == "TYPE")
                {
                    Assert.True(parts.Length == 4 && s_types.Contains(parts[3]), where + ": bad TYPE line");
                    Assert.Matches(MetricName(), parts[2]);
                    Assert.False(families.ContainsKey(parts[2]), where + ": second TYPE for the family");
                    if (current is not null)
                    {
                        finished.Add(current.Name);
                    }

                    current = new PromFamily(parts[2], parts[3], help.GetValueOrDefault(parts[2], string.Empty), []);
                    families[current.Name] = current;
                }

                continue;
            }

            var sample = ParseSample(line, where);
            var family = FamilyOf(sample.Name, families);
            Assert.True(family is not null, where + ": sample before its family's TYPE line");
            Assert.False(finished.Contains(family!.Name), where + ": the family's samples are not together");
            Assert.True(ReferenceEquals(family, current), where + ": sample of another family than the last TYPE");
            var key = sample.Name + "{" + string.Join(",", sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)) + "}";
            Assert.True(series.Add(key), where + ": repeated series " + key);
            family.Samples.Add(sample);
        }

        foreach (var family in families.Values.Where(f => f.Type == "histogram"))
        {
            CheckHistogram(family);
        }

        return families;
    }

    private static PromFamily? FamilyOf(string sampleName, Dictionary<string, PromFamily> families)
    {
        if (families.TryGetValue(sampleName, out var exact) && exact.Type != "histogram")
        {
            return exact;
        }

        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (sampleName.EndsWith(suffix, StringComparison.Ordinal)
                && families.TryGetValue(sampleName[..^suffix.Length], out var f) && f.Type is "histogram" or "summary")
            {
                return f;
            }
        }

        return null;
    }

    private static PromSample ParseSample(string line, string where)
    {
        int i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ')
        {
            i++;
        }

        var name = line[..i];
        Assert.Matches(MetricName(), name);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                int eq = line.IndexOf('=', i);
                Assert.True(eq > i, where + ": label without =");
                var labelName = line[i..eq];
                Assert.Matches(LabelName(), labelName);
                Assert.True(line[eq + 1] == '"', where + ": label value not quoted");
                var value = new StringBuilder();
                int j = eq + 2;
                for (; line[j] != '"'; j++)
                {
                    if (line[j] == '\\')
                    {
                        j++;
                        value.Append(line[j] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            _ => throw new Xunit.Sdk.XunitException(where + ": bad escape \\" + line[j]),
                        });
                    }
                    else
                    {
                        value.Append(line[j]);
                    }
                }

                Assert.True(labels.TryAdd(labelName, value.ToString()), where + ": repeated label " + labelName);
                i = j + 1;
                if (line[i] == ',')
                {
                    i++;
                }
                else
                {
                    Assert.True(line[i] == '}', where + ": expected , or }");
                }
            }

            i++;
        }

        Assert.True(i < line.Length && line[i] == ' ', where + ": no blank before the value");
        var rest = line[(i + 1)..].Split(' ');
        Assert.True(rest.Length is 1 or 2, where + ": value [timestamp] expected");
        return new PromSample(name, labels, Number(rest[0], where));
    }

    private static double Number(string text, string where) => text switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : throw new Xunit.Sdk.XunitException(where + ": bad number " + text),
    };

    private static void CheckHistogram(PromFamily family)
    {
        foreach (var group in family.Samples.GroupBy(s => string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value))))
        {
            var buckets = group.Where(s => s.Name == family.Name + "_bucket").ToList();
            Assert.True(buckets.Count > 0 && buckets.All(b => b.Labels.ContainsKey("le")), $"{family.Name}{{{group.Key}}}: no buckets");
            Assert.Equal("+Inf", buckets[^1].Labels["le"]);
            double lastBound = double.NegativeInfinity, lastCount = 0;
            foreach (var b in buckets)
            {
                double bound = Number(b.Labels["le"], family.Name);
                Assert.True(bound > lastBound, $"{family.Name}: bucket bounds must increase");
                Assert.True(b.Value >= lastCount, $"{family.Name}: bucket counts must be cumulative");
                (lastBound, lastCount) = (bound, b.Value);
            }

            var count = group.Single(s => s.Name == family.Name + "_count");
            Assert.Single(group, s => s.Name == family.Name + "_sum");
            Assert.Equal(buckets[^1].Value, count.Value);
        }
    }

    /// <summary>The value of the one sample named <paramref name="name"/> with these labels; 0 when there is none yet.</summary>
    public static double Value(this Dictionary<string, PromFamily> families, string family, string name, params (string Name, string Value)[] labels)
    {
        Assert.True(families.TryGetValue(family, out var f), "no metric family " + family);
        var matches = f!.Samples.Where(s => s.Name == name && s.Has(labels)).ToList();
        Assert.True(matches.Count <= 1, $"{matches.Count} samples of {name} match");
        return matches.Count == 0 ? 0 : matches[0].Value;
    }
}
