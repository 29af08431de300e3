using System.Net;
using System.Net.Sockets;
using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Transport;

/// <summary>Binds the TCP and unix-domain listeners named by listen_addr, listen_port and unix_socket_dir.</summary>
internal static class Listener
{
    public static List<Socket> Bind(ProxyConfig config)
    {
        var sockets = new List<Socket>();
        try
        {
            foreach (var address in config.ListenAddresses)
            {
                foreach (var ip in Resolve(address))
                {
                    var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                    ReusePort.EnableReuseAddress(socket);
                    if (config.SoReuseport)
                    {
                        ReusePort.Enable(socket);
                    }
                    if (ip.AddressFamily == AddressFamily.InterNetworkV6)
                    {
                        socket.DualMode = false;
                    }

                    socket.Bind(new IPEndPoint(ip, config.ListenPort));
                    socket.Listen(512);
                    sockets.Add(socket);
                }
            }

            if (!string.IsNullOrEmpty(config.UnixSocketDir))
            {
                // The port in the file name follows the PostgreSQL convention, so psql -h DIR -p PORT finds it.
                int port = config.ListenPort != 0 ? config.ListenPort : PortOf(sockets);
                var path = Path.Combine(config.UnixSocketDir, $".s.PGSQL.{port}");
                if (File.Exists(path))
                {
                    // A socket file someone still accepts on belongs to a running server (another FastPool, a
                    // PgBouncer, a PostgreSQL): taking it over is only for a so_reuseport successor.
                    if (!config.SoReuseport && IsAccepting(path))
                    {
                        throw new SocketException((int)SocketError.AddressAlreadyInUse);
                    }

                    File.Delete(path);
                }

                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                socket.Bind(new UnixDomainSocketEndPoint(path));
                socket.Listen(512);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(path, (UnixFileMode)config.UnixSocketMode);
                }
                sockets.Add(socket);
            }
        }
        catch
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }

            throw;
        }

        return sockets;
    }

    private static bool IsAccepting(string path)
    {
        try
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static int PortOf(IEnumerable<Socket> sockets)
    {
        foreach (var s in sockets)
        {
            if (s.LocalEndPoint is IPEndPoint ip)
            {
                return ip.Port;
            }
        }

        return 0;
    }

    private static IEnumerable<IPAddress> Resolve(string address)
    {
        if (address == "*")
        {
            return [IPAddress.Any, IPAddress.IPv6Any];
        }

        if (IPAddress.TryParse(address, out var ip))
        {
            return [ip];
        }

        return Dns.GetHostAddresses(address);
    }
}
