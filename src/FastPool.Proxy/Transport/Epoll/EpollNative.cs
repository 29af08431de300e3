using System.Runtime.InteropServices;

namespace FastPool.Proxy.Transport.Epoll;

/// <summary>
/// The few libc calls the epoll transport needs (epoll(7), recv(2), send(2), eventfd(2)), bound at compile
/// time with LibraryImport so native AOT needs no runtime marshalling. Linux only.
/// </summary>
internal static unsafe partial class EpollNative
{
    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;

    public const uint EPOLLIN = 0x001;
    public const uint EPOLLOUT = 0x004;
    public const uint EPOLLERR = 0x008;
    public const uint EPOLLHUP = 0x010;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLET = 1u << 31;

    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;

    public const int EFD_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800;

    public const int SOL_SOCKET = 1;
    public const int SO_ERROR = 4;

    public const int EINTR = 4;
    public const int EAGAIN = 11;

    /// <summary>
    /// struct epoll_event is packed on x86-64 (12 bytes: events at 0, data at 4) and naturally aligned
    /// elsewhere (16 bytes: data at 8); see the definition in the kernel's uapi eventpoll.h.
    /// </summary>
    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    public static readonly int EventDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [LibraryImport("libc")]
    internal static partial int sched_yield();

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epfd, byte* events, int maxevents, int timeout);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static partial nint LibcRecv(nint fd, byte* buf, nint len, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static partial nint LibcSend(nint fd, byte* buf, nint len, int flags);

    // syscall(2) itself, for the two calls on the forwarding path. glibc's recv and send are thread
    // cancellation points (pthreads(7), "Cancellation points"): each call switches asynchronous cancellation on
    // and off around the system call. FastPool never cancels a thread, and in a profile of pgbench's extended
    // protocol through the proxy that switching was 6% of the proxy's user time. The variadic declaration in
    // unistd.h takes integer arguments in the same registers as a fixed one on x86-64 and arm64 Linux.
    // Only non-blocking calls go through here (MSG_DONTWAIT on non-blocking sockets), so they can also skip the
    // runtime's GC-mode transition: they return in microseconds and never call back into managed code.
    // errno is read only when the call failed (see Sys): with no GC transition nothing runs between the call and that
    // read, so the marshaller's clear-before and read-after of errno on every call are not needed.
    [SuppressGCTransition]
    [LibraryImport("libc", EntryPoint = "syscall")]
    private static partial nint Syscall6(nint number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);

    /// <summary>A system call through <see cref="Syscall6"/>; on failure errno becomes the last P/Invoke error, as SetLastError would.</summary>
    private static nint Sys(nint number, nint a1, nint a2, nint a3, nint a4)
    {
        nint n = Syscall6(number, a1, a2, a3, a4, 0, 0);
        if (n < 0)
        {
            Marshal.SetLastPInvokeError(Marshal.GetLastSystemError());
        }

        return n;
    }

    // recvfrom and sendto (recv and send are these with no address) from the kernel's syscall tables:
    // arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h (arm64).
    private static readonly nint SysRecvfrom = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 45,
        Architecture.Arm64 => 207,
        _ => -1,
    };

    private static readonly nint SysSendto = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 44,
        Architecture.Arm64 => 206,
        _ => -1,
    };

    /// <summary>recv(2); -1 with the error in the last P/Invoke error.</summary>
    public static nint recv(nint fd, byte* buf, nint len, int flags) =>
        SysRecvfrom >= 0 ? Sys(SysRecvfrom, fd, (nint)buf, len, flags) : LibcRecv(fd, buf, len, flags);

    /// <summary>send(2); -1 with the error in the last P/Invoke error.</summary>
    public static nint send(nint fd, byte* buf, nint len, int flags) =>
        SysSendto >= 0 ? Sys(SysSendto, fd, (nint)buf, len, flags) : LibcSend(fd, buf, len, flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, byte* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, byte* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsockopt(nint fd, int level, int optname, int* optval, int* optlen);

    /// <summary>Adds <paramref name="fd"/> to the epoll set with an opaque 64-bit token; returns errno or 0.</summary>
    public static int Add(int epfd, nint fd, uint events, ulong token)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(ulong*)(ev + EventDataOffset) = token;
        return epoll_ctl(epfd, EPOLL_CTL_ADD, (int)fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    public static void Remove(int epfd, nint fd)
    {
        byte* ev = stackalloc byte[16];
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, (int)fd, ev);
    }
}
