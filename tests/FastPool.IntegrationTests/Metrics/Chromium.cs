using System.IO.Compression;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;

namespace FastPool.IntegrationTests.Metrics;

/// <summary>
/// A fact that needs Debian's chromium. When chromium is missing it runs tools/install-chromium.sh (apt-get, as
/// .ci/run does), and the test is skipped, with the installer's reason, only when that install is impossible.
/// </summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (Chromium.UnavailableReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>Headless chromium, one short-lived process per call, with its own throwaway profile.</summary>
internal static class Chromium
{
    private static readonly Lazy<string?> s_unavailable = new(() => DebianTool.EnsureInstalled("chromium", "install-chromium.sh", "chromium"));

    public static string? UnavailableReason => s_unavailable.Value;

    /// <summary>The DOM after the page loaded (what a person would see, as HTML).</summary>
    public static async Task<string> DumpDomAsync(Uri url)
    {
        var result = await RunAsync(["--dump-dom", url.ToString()]);
        return result.StandardOutput;
    }

    /// <summary>A PNG screenshot of the page at <paramref name="width"/> x <paramref name="height"/>.</summary>
    public static async Task ScreenshotAsync(Uri url, string path, int width, int height)
    {
        File.Delete(path);
        await RunAsync([$"--screenshot={path}", $"--window-size={width},{height}", "--hide-scrollbars", url.ToString()]);
        Assert.True(File.Exists(path), "chromium wrote no screenshot to " + path);
    }

    private static async Task<ToolResult> RunAsync(string[] arguments)
    {
        var profile = Directory.CreateTempSubdirectory("fastpool-chromium-");
        try
        {
            // --no-sandbox: the tests run as root, where chromium's sandbox refuses to start.
            string[] common = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", $"--user-data-dir={profile.FullName}"];
            var result = await ProtocolTestSupport.RunToolAsync("chromium", [.. common, .. arguments], TimeSpan.FromSeconds(90));
            Assert.True(result.ExitCode == 0, "chromium failed: " + result);
            return result;
        }
        finally
        {
            profile.Delete(recursive: true);
        }
    }
}

/// <summary>Just enough of PNG (RFC 2083) to look at a screenshot's pixels: 8-bit RGB or RGBA, not interlaced.</summary>
internal sealed class PngImage
{
    private PngImage(int width, int height, int channels, byte[] pixels)
    {
        Width = width;
        Height = height;
        Channels = channels;
        Pixels = pixels;
    }

    public int Width { get; }

    public int Height { get; }

    public int Channels { get; }

    public byte[] Pixels { get; }

    public (byte R, byte G, byte B) this[int x, int y]
    {
        get
        {
            int i = ((y * Width) + x) * Channels;
            return (Pixels[i], Pixels[i + 1], Pixels[i + 2]);
        }
    }

    public static PngImage Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }), "not a PNG file");
        int width = 0, height = 0, channels = 0;
        using var idat = new MemoryStream();
        for (int at = 8; at < bytes.Length;)
        {
            int length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(at));
            var type = System.Text.Encoding.ASCII.GetString(bytes, at + 4, 4);
            var data = bytes.AsSpan(at + 8, length);
            if (type == "IHDR")
            {
                width = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data);
                height = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                Assert.True(data[8] == 8 && data[12] == 0, "only 8-bit, non-interlaced PNGs are read here");
                channels = data[9] switch
                {
                    2 => 3,
                    6 => 4,
                    _ => throw new Xunit.Sdk.XunitException("PNG color type " + data[9] + " not read here"),
                };
            }
            else if (type == "IDAT")
            {
                idat.Write(data);
            }

            at += 12 + length;
        }

        idat.Position = 0;
        using var inflate = new ZLibStream(idat, CompressionMode.Decompress);
        using var raw = new MemoryStream();
        inflate.CopyTo(raw);
        return new PngImage(width, height, channels, Unfilter(raw.ToArray(), width, height, channels));
    }

    /// <summary>Undoes the per-row filters (None, Sub, Up, Average, Paeth).</summary>
    private static byte[] Unfilter(byte[] data, int width, int height, int bpp)
    {
        int stride = width * bpp;
        var result = new byte[stride * height];
        for (int y = 0; y < height; y++)
        {
            byte filter = data[y * (stride + 1)];
            var line = data.AsSpan((y * (stride + 1)) + 1, stride);
            var row = result.AsSpan(y * stride, stride);
            var above = y == 0 ? new byte[stride] : result.AsSpan((y - 1) * stride, stride);
            for (int x = 0; x < stride; x++)
            {
                int a = x >= bpp ? row[x - bpp] : 0, b = above[x], c = x >= bpp ? above[x - bpp] : 0;
                row[x] = (byte)(line[x] + filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new Xunit.Sdk.XunitException("bad PNG filter " + filter),
                });
            }
        }

        return result;
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
