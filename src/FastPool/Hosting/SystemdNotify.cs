using System.Net.Sockets;
using System.Text;

namespace FastPool.Hosting;

/// <summary>
/// sd_notify without libsystemd: a datagram to $NOTIFY_SOCKET, so Type=notify units know when FastPool
/// accepts connections and when it is stopping (systemd.service(5), sd_notify(3)).
/// </summary>
internal static class SystemdNotify
{
    public static void Send(string state)
    {
        var path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path))
        {
            return;
        }

        // A leading '@' names an abstract socket: the kernel wants a NUL byte there.
        if (path[0] == '@')
        {
            path = "\0" + path.Substring(1);
        }

        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(path));
            socket.Send(Encoding.UTF8.GetBytes(state));
        }
        catch (SocketException)
        {
            // Readiness notification is advisory; a missing listener must not stop the pooler.
        }
    }
}
