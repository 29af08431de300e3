using System.Net.Sockets;
using System.Runtime.InteropServices;
using FastPool.Proxy.Transport.Epoll;

namespace FastPool.Proxy.Transport;

/// <summary>
/// The direct send(2) both native transports start every send with: the epoll transport for all of it, io_uring
/// for sends made off its loop thread. The socket's handle is held meanwhile, so an Abort on another thread
/// cannot close the descriptor (and let the number be reused) in the middle of the call.
/// </summary>
internal static class NonBlockingSend
{
    /// <summary>send(2) until all is sent, the socket is full (EAGAIN) or failed; returns the bytes sent, and errno when short.</summary>
    public static unsafe int Send(SafeSocketHandle handle, ReadOnlySpan<byte> data, out int errno)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return Send(handle.DangerousGetHandle(), data, out errno);
        }
        catch (ObjectDisposedException)
        {
            errno = Errno.EPIPE;
            return 0;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// The same on a descriptor the caller knows stays open for the call (the epoll loop's own reference, on its
    /// thread: EpollConnection).
    /// </summary>
    public static unsafe int Send(nint fd, ReadOnlySpan<byte> data, out int errno)
    {
        errno = 0;
        int total = 0;
        fixed (byte* p = data)
        {
            while (total < data.Length)
            {
                nint n = EpollNative.send(fd, p + total, data.Length - total, EpollNative.MSG_NOSIGNAL | EpollNative.MSG_DONTWAIT);
                if (n > 0)
                {
                    total += (int)n;
                    continue;
                }

                errno = Marshal.GetLastPInvokeError();
                if (errno != EpollNative.EINTR)
                {
                    break;
                }
            }
        }

        return total;
    }
}
