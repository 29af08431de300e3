using System.Globalization;
using System.Text.Json;
using FastPool.Load.Tests.Infrastructure;

namespace FastPool.Load.Tests.Run;

/// <summary>The harness against a real PostgreSQL: its numbers agree with the server's and with its own raw data.</summary>
[Collection(LoadPostgresCollection.Name)]
public sealed class RunTests(LoadPostgresFixture fixture) : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("fastpool-load-out-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    [Fact]
    public async Task Reported_transactions_match_the_servers_xact_commit_delta()
    {
        const int transactions = 2000;
        var before = await XactCommitAsync();

        var result = await RunAsync(
            "--target", $"db={fixture.ConnectionString(LoadPostgresFixture.CountDatabase)}",
            "--scenario", "select", "--clients", "4", "--transactions", transactions.ToString(CultureInfo.InvariantCulture));

        var target = ReadReport().GetProperty("targets")[0];
        Assert.Equal(transactions, target.GetProperty("transactions").GetInt64());
        Assert.Equal(0, target.GetProperty("errors").GetInt64());

        // Backends flush their statistics when they exit, a moment after the harness closed them: poll until stable.
        long delta = 0;
        for (var i = 0; i < 50; i++)
        {
            var now = await XactCommitAsync() - before;
            if (now == delta && now >= transactions)
            {
                break;
            }

            delta = now;
            await Task.Delay(200);
        }

        Assert.True(Math.Abs(delta - transactions) <= transactions / 100, $"server counted {delta} commits, harness {transactions}; {result.Output}");
    }

    [Fact]
    public async Task Percentiles_agree_with_a_recomputation_from_the_raw_samples()
    {
        await RunAsync("--target", $"db={fixture.ConnectionString()}", "--scenario", "extended", "--clients", "2", "--duration", "1s", "--raw-samples");

        var target = ReadReport().GetProperty("targets")[0];
        var samples = File.ReadAllLines(Path.Combine(_out, "samples-db.txt")).Select(l => long.Parse(l, CultureInfo.InvariantCulture)).Order().ToArray();
        Assert.Equal(target.GetProperty("transactions").GetInt64(), samples.Length);
        Assert.True(samples.Length > 100, $"only {samples.Length} samples");

        var latency = target.GetProperty("latency_ms");
        foreach (var (name, percentile) in new[] { ("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9), ("max", 100.0) })
        {
            // HdrHistogram's rank: round(p * n), at least 1. With 3 significant digits it reports the top of the
            // value's bucket, at most 0.1% above the sample.
            var rank = Math.Max(1, (long)((percentile / 100 * samples.Length) + 0.5));
            var exact = samples[rank - 1];
            var reported = latency.GetProperty(name).GetDouble() * 1000;
            Assert.True(reported >= exact - 1 && reported <= (exact * 1.002) + 1, $"{name}: report {reported} µs, samples {exact} µs");
        }
    }

    [Fact]
    public async Task Two_interleaved_targets_write_report_json_md_and_plots()
    {
        var result = await RunAsync(
            "--target", $"one={fixture.ConnectionString()}", "--target", $"two={fixture.ConnectionString()}",
            "--scenario", "tpcb", "--clients", "2", "--duration", "1s", "--slice", "250ms", "--warmup", "250ms");

        var targets = ReadReport().GetProperty("targets");
        Assert.Equal(["one", "two"], targets.EnumerateArray().Select(t => t.GetProperty("name").GetString()));
        foreach (var target in targets.EnumerateArray())
        {
            Assert.True(target.GetProperty("transactions").GetInt64() > 0);
            Assert.True(target.GetProperty("tps").GetDouble() > 0);
            var latency = target.GetProperty("latency_ms");
            var values = new[] { "p50", "p90", "p99", "p999", "max" }.Select(p => latency.GetProperty(p).GetDouble()).ToArray();
            Assert.Equal(values.Order(), values);
        }

        var markdown = File.ReadAllText(Path.Combine(_out, "report.md"));
        Assert.Contains("| target | transactions | errors | tps | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |", markdown, StringComparison.Ordinal);
        Assert.Contains("| one | ", markdown, StringComparison.Ordinal);
        Assert.Contains("| two | ", markdown, StringComparison.Ordinal);
        foreach (var png in new[] { "throughput.png", "latency.png" })
        {
            var bytes = File.ReadAllBytes(Path.Combine(_out, png));
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        }

        Assert.Contains("| one | ", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_model_keeps_its_arrival_rate()
    {
        // 50/s for 2 s: 100 arrivals scheduled. The schedule, not the server's speed, decides the count.
        await RunAsync("--target", $"db={fixture.ConnectionString()}", "--rate", "50", "--duration", "2s", "--clients", "4");

        var target = ReadReport().GetProperty("targets")[0];
        var completed = target.GetProperty("transactions").GetInt64() + target.GetProperty("errors").GetInt64();
        Assert.InRange(completed, 80, 120);
    }

    private async Task<LoadResult> RunAsync(params string[] args)
    {
        var result = await LoadPostgresFixture.RunAsync(["run", .. args, "--out", _out, "--no-live"]);
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Error}");
        return result;
    }

    private JsonElement ReadReport()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "report.json")));
        return document.RootElement.Clone();
    }

    private async Task<long> XactCommitAsync() => long.Parse(
        await fixture.Cluster.PsqlAsync($"SELECT xact_commit FROM pg_stat_database WHERE datname = '{LoadPostgresFixture.CountDatabase}'"),
        CultureInfo.InvariantCulture);
}
