using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace FastPool.Proxy.Transport;

/// <summary>
/// What the kernel holds for a socket: bytes received that nobody has read yet (FIONREAD) and bytes written that
/// the peer has not taken yet (TIOCOUTQ, Linux; see tcp(7) and unix(7) "ioctls"). For the admin console.
/// </summary>
internal static partial class SocketQueues
{
    // asm-generic/ioctls.h: the same number on every Linux architecture .NET runs on.
    private const nuint TIOCOUTQ = 0x5411;

    /// <summary>(received, unsent) in bytes; zeros for a closed socket, the unsent count zero off Linux.</summary>
    public static (long Received, long Unsent) Read(Socket socket)
    {
        try
        {
            long received = socket.Available;
            return (received, OperatingSystem.IsLinux() ? Unsent(socket) : 0);
        }
        catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
        {
            return (0, 0);
        }
    }

    private static long Unsent(Socket socket)
    {
        var handle = socket.SafeHandle;
        bool added = false;
        try
        {
            // Held across the call, so the descriptor cannot be closed and reused for another socket meanwhile.
            handle.DangerousAddRef(ref added);
            return ioctl((int)handle.DangerousGetHandle(), TIOCOUTQ, out int unsent) == 0 ? unsent : 0;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, nuint request, out int value);
}
