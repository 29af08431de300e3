using FastPool.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using static FastPool.IntegrationTests.Admin.AdminSupport;
using static FastPool.IntegrationTests.Metrics.MetricsSupport;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Metrics;

/// <summary>The status page at "/" as a person sees it: in a real (headless) chromium.</summary>
[Collection(PostgresCollection.Name)]
public sealed class StatusPageBrowserTests
{
    private const int Width = 1280;
    private const int Height = 800;

    private readonly PostgresFixture _fixture;
    private readonly ITestOutputHelper _output;

    public StatusPageBrowserTests(PostgresFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
    }

    [ChromiumFact]
    public async Task StatusPage_ShowsThePoolAndTheState_InChromium()
    {
        await using var host = StartWithMetrics(_fixture.Primary);
        var conn = await host.OpenAsync(PostgresFixture.AppDatabase, PostgresFixture.AppUser);
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(i, await ScalarAsync<int>(conn, $"select {i}"));
        }

        var dom = await Chromium.DumpDomAsync(Url(host, "/"));
        Assert.Contains("<title>FastPool status</title>", dom, StringComparison.Ordinal);
        Assert.Contains($"<td>{PostgresFixture.AppDatabase}</td><td>{PostgresFixture.AppUser}</td><td>session</td>", dom, StringComparison.Ordinal);
        Assert.Contains("id=\"state\">accepting<", dom, StringComparison.Ordinal);
        Assert.Contains("http-equiv=\"refresh\"", dom, StringComparison.Ordinal);

        // The screenshot: a page of the window's size, mostly white, with the green "accepting" badge drawn.
        var path = Path.Combine(AppContext.BaseDirectory, "status-page.png");
        await Chromium.ScreenshotAsync(Url(host, "/"), path, Width, Height);
        _output.WriteLine("screenshot: " + path);
        var png = PngImage.Read(path);
        Assert.Equal((Width, Height), (png.Width, png.Height));
        Assert.True(CountPixels(png, (0x22, 0xaa, 0x77)) > 100, "the green accepting badge is not in the screenshot");
        Assert.True(CountPixels(png, (0xff, 0xff, 0xff)) > Width * Height / 2, "the page is not mostly white background");
        Assert.True(CountPixels(png, (0x22, 0x22, 0x22)) > 200, "no text drawn in the page's text color");

        // Paused, the badge says so (and turns red). In session mode PAUSE returns once the clients left.
        await conn.DisposeAsync();
        await RunAsync(host.Port, "PAUSE");
        var paused = await Chromium.DumpDomAsync(Url(host, "/"));
        Assert.Contains("id=\"state\">paused<", paused, StringComparison.Ordinal);
        await RunAsync(host.Port, "RESUME");
    }

    private static int CountPixels(PngImage png, (byte R, byte G, byte B) color)
    {
        int count = 0;
        for (int y = 0; y < png.Height; y++)
        {
            for (int x = 0; x < png.Width; x++)
            {
                if (png[x, y] == color)
                {
                    count++;
                }
            }
        }

        return count;
    }
}
