using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;

namespace FastPool.IntegrationTests.Cache;

/// <summary>
/// A fact that needs Debian's redis-server. When it is missing, tools/install-redis.sh is run (apt-get, as .ci/run
/// does); the test is skipped, with the installer's reason, only when that install is impossible.
/// </summary>
public sealed class RedisFactAttribute : FactAttribute
{
    public RedisFactAttribute()
    {
        if (RedisServer.UnavailableReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>
/// A throwaway redis-server on a free 127.0.0.1 port, without persistence, in a temporary directory; one per test
/// class (an xunit class fixture). It can be stopped and started again on the same port mid-test.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    private static readonly Lazy<string?> s_unavailable = new(() => DebianTool.EnsureInstalled("redis-server", "install-redis.sh", "redis-server"));
    private DirectoryInfo? _directory;
    private Process? _process;

    public static string? UnavailableReason => s_unavailable.Value;

    public int Port { get; private set; }

    /// <summary>memqcache_redis for this server.</summary>
    public string Endpoint => "127.0.0.1:" + Port;

    public async Task InitializeAsync()
    {
        if (UnavailableReason is not null)
        {
            return;
        }

        _directory = Directory.CreateTempSubdirectory("fastpool-redis-");
        for (int attempt = 0; ; attempt++)
        {
            using (var listener = new TcpListener(IPAddress.Loopback, 0))
            {
                listener.Start();
                Port = ((IPEndPoint)listener.LocalEndpoint).Port;
            }

            try
            {
                await StartAsync();
                return;
            }
            catch (Exception) when (attempt < 3)
            {
                // Another process took the port between its release and redis-server's bind: another one.
            }
        }
    }

    /// <summary>Starts redis-server (again: empty, as a restarted Redis without persistence is) and waits until it answers.</summary>
    public async Task StartAsync()
    {
        var psi = new ProcessStartInfo("redis-server")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _directory!.FullName,
        };
        foreach (var arg in new[]
        {
            "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
            "--save", string.Empty, "--appendonly", "no", "--dir", _directory.FullName, "--daemonize", "no",
            "--logfile", Path.Combine(_directory.FullName, "redis.log"),
        })
        {
            psi.ArgumentList.Add(arg);
        }

        _process = Process.Start(psi) ?? throw new InvalidOperationException("could not start redis-server");
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException("redis-server exited with " + _process.ExitCode + ": "
                    + File.ReadAllText(Path.Combine(_directory.FullName, "redis.log")));
            }

            if (await PingAsync())
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, "redis-server did not answer on port " + Port);
            await Task.Delay(50);
        }
    }

    /// <summary>Kills redis-server (as a crash would) and waits for it to be gone.</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }

        _process?.Dispose();
        _process = null;
    }

    public async Task DisposeAsync()
    {
        await StopAsync();
        _directory?.Delete(recursive: true);
    }

    private async Task<bool> PingAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray());
            var buffer = new byte[16];
            int n = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(2));
            return n >= 5 && buffer.AsSpan(0, 5).SequenceEqual("+PONG"u8);
        }
        catch (Exception)
        {
            return false;
        }
    }
}
