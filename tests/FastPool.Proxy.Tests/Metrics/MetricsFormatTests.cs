using System.Text;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Metrics;

namespace FastPool.Proxy.Tests.Metrics;

public class MetricsFormatTests
{
    [Fact]
    public void Histogram_buckets_are_cumulative_and_bounds_inclusive()
    {
        var h = new LatencyHistogram();
        h.Observe(100);             // exactly the first bound (0.0001 s): in the first bucket
        h.Observe(101);             // just above it: in the second
        h.Observe(TimeSpan.FromSeconds(3));
        h.Observe(TimeSpan.FromMinutes(5)); // above every bound: only in +Inf

        var cumulative = h.CumulativeCounts();
        Assert.Equal(LatencyHistogram.BoundsSeconds.Length + 1, cumulative.Length);
        Assert.Equal(1, cumulative[0]);
        Assert.Equal(2, cumulative[1]);
        Assert.Equal(3, cumulative[Array.IndexOf(LatencyHistogram.BoundsSeconds, 5.0)]);
        Assert.Equal(3, cumulative[^2]);
        Assert.Equal(4, cumulative[^1]);
        Assert.Equal(4, h.Count);
        Assert.Equal(100 + 101 + 3_000_000 + 300_000_000, h.SumMicroseconds);
    }

    [Fact]
    public void Label_values_are_escaped()
    {
        var text = new StringBuilder();
        var w = new PrometheusWriter(text);
        w.Family("m", "gauge", "help");
        w.Sample("m", 1.5, ("database", "a\"b\\c\nd"));
        Assert.Equal("# HELP m help\n# TYPE m gauge\nm{database=\"a\\\"b\\\\c\\nd\"} 1.5\n", text.ToString());
    }

    [Fact]
    public void Histogram_series_end_with_inf_sum_and_count()
    {
        var h = new LatencyHistogram();
        h.Observe(TimeSpan.FromMilliseconds(2));
        var text = new StringBuilder();
        new PrometheusWriter(text).Histogram("h", h, ("user", "u"));
        var lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("h_bucket{user=\"u\",le=\"0.0001\"} 0", lines[0]);
        Assert.Contains("h_bucket{user=\"u\",le=\"0.0025\"} 1", lines);
        Assert.Equal("h_bucket{user=\"u\",le=\"+Inf\"} 1", lines[^3]);
        Assert.Equal("h_sum{user=\"u\"} 0.002", lines[^2]);
        Assert.Equal("h_count{user=\"u\"} 1", lines[^1]);
    }

    [Theory]
    [InlineData("127.0.0.1:9127", "127.0.0.1", 9127)]
    [InlineData("*:9127", "*", 9127)]
    [InlineData("[::1]:0", "::1", 0)]
    [InlineData("localhost:80", "localhost", 80)]
    public void Listen_endpoints_parse(string text, string host, int port)
    {
        Assert.True(ListenEndpoint.TryParse(text, out var endpoint));
        Assert.Equal(new ListenEndpoint(host, port), endpoint);
    }

    [Theory]
    [InlineData("9127")]
    [InlineData(":9127")]
    [InlineData("host:")]
    [InlineData("host:70000")]
    [InlineData("::1:9127")]
    [InlineData("host:-1")]
    public void Bad_listen_endpoints_are_refused(string text) => Assert.False(ListenEndpoint.TryParse(text, out _));

    [Fact]
    public void Metrics_listen_is_read_from_the_fastpool_section()
    {
        var ok = ConfigLoader.LoadFromText("[databases]\n* = host=127.0.0.1\n[fastpool]\nmetrics_listen = 127.0.0.1:9127\n", "pgbouncer.ini", Path.GetTempPath());
        Assert.Equal(new ListenEndpoint("127.0.0.1", 9127), ok.Config!.FastPool.MetricsListen);

        var bad = ConfigLoader.LoadFromText("[databases]\n* = host=127.0.0.1\n[fastpool]\nmetrics_listen = 9127\n", "pgbouncer.ini", Path.GetTempPath());
        Assert.Null(bad.Config);
        Assert.Contains(bad.Errors, e => e.ToString().Contains("metrics_listen", StringComparison.Ordinal) && e.ToString().Contains("HOST:PORT", StringComparison.Ordinal));
    }
}
