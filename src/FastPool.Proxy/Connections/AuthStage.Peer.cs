using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using FastPool.Protocol;

namespace FastPool.Proxy.Connections;

/// <summary>
/// peer authentication for unix-socket clients (PostgreSQL docs 21.9 "Peer Authentication"; PgBouncer applies
/// it the same way): the operating-system user at the other end of the socket must have the name the client
/// logs in as. The hba parser allows peer on local lines only.
/// </summary>
internal sealed partial class AuthStage
{
    private const int SolSocket = 1;   // SOL_SOCKET on Linux
    private const int SoPeerCred = 17; // SO_PEERCRED on Linux: struct ucred { pid_t pid; uid_t uid; gid_t gid; }

    private static async Task<bool> PeerAsync(ClientContext context)
    {
        var osUser = PeerUserName(context.Connection.Socket);
        if (osUser is not null && string.Equals(osUser, context.User, StringComparison.Ordinal))
        {
            return true;
        }

        await context.SendErrorAsync(SqlState.InvalidAuthorizationSpecification, $"peer authentication failed for user \"{context.User}\"").ConfigureAwait(false);
        return false;
    }

    /// <summary>The name of the peer process's user, or null when it cannot be known (not a unix socket, no such uid).</summary>
    private static string? PeerUserName(Socket socket)
    {
        if (socket.AddressFamily != AddressFamily.Unix || !OperatingSystem.IsLinux())
        {
            return null;
        }

        Span<byte> ucred = stackalloc byte[12];
        try
        {
            if (socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) < 12)
            {
                return null;
            }
        }
        catch (SocketException)
        {
            return null;
        }

        uint uid = MemoryMarshal.Read<uint>(ucred[4..]); // native byte order, as the kernel wrote it
        return UserNameOf(uid);
    }

    /// <summary>Looks the uid up in /etc/passwd (name:password:uid:...), which is what getpwuid reads on a plain system.</summary>
    private static string? UserNameOf(uint uid)
    {
        try
        {
            foreach (var line in File.ReadLines("/etc/passwd"))
            {
                var fields = line.Split(':');
                if (fields.Length > 2 && uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value == uid)
                {
                    return fields[0];
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }
}
