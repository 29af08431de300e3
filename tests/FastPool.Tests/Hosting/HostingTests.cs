using System.Net.Sockets;
using System.Text;
using FastPool.Hosting;
using Microsoft.Extensions.Logging;

namespace FastPool.Tests.Hosting;

public class HostingTests
{
    [Fact]
    public void Log_lines_have_pgbouncer_shape_in_the_logfile()
    {
        var file = Path.GetTempFileName();
        try
        {
            using (var provider = new PgBouncerStyleLoggerProvider(file, LogLevel.Information))
            {
                var logger = provider.CreateLogger("x");
                logger.LogInformation("hello {Who}", "world");
                logger.LogWarning("careful");
                logger.LogDebug("not shown");
            }

            var lines = File.ReadAllLines(file);
            Assert.Equal(2, lines.Length);
            Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[\d+\] LOG hello world$", lines[0]);
            Assert.EndsWith("WARNING careful", lines[1]);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("2026-11-27T10:05:09.007")]
    [InlineData("2026-01-01T00:00:00.000")]
    [InlineData("1999-12-31T23:59:59.999")]
    [InlineData("0987-06-05T04:03:02.100")]
    public void Log_timestamps_read_as_the_time_they_stand_for(string iso)
    {
        var t = DateTime.Parse(iso, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind);
        var sb = new StringBuilder();
        PgBouncerStyleLoggerProvider.AppendTimestamp(sb, t);
        Assert.Equal(t.ToString("yyyy-MM-dd HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture), sb.ToString());
    }

    [Fact]
    public void Systemd_notify_sends_the_state_to_notify_socket()
    {
        var path = Path.Combine(Path.GetTempPath(), "fp-notify-" + Guid.NewGuid().ToString("N")[..8]);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        var old = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        try
        {
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", path);
            SystemdNotify.Send("READY=1");
            var buffer = new byte[256];
            listener.ReceiveTimeout = 5000;
            int n = listener.Receive(buffer);
            Assert.Equal("READY=1", Encoding.UTF8.GetString(buffer, 0, n));
        }
        finally
        {
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", old);
            File.Delete(path);
        }
    }
}
