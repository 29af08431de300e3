using System.Runtime.InteropServices;

namespace FastPool.Proxy.Transport.IoUring;

/// <summary>
/// The io_uring system calls and the parts of the kernel's uapi <c>linux/io_uring.h</c> FastPool uses. glibc has
/// no wrappers for io_uring_setup(2), io_uring_enter(2) and io_uring_register(2), so they go through syscall(2);
/// their numbers (425, 426, 427) come from the unified table every architecture added them to in 5.1, so they
/// are the same on x86-64 and arm64, as are the layouts below (fixed-size fields, no padding differences).
/// </summary>
internal static unsafe partial class IoUringNative
{
    public const long SYS_io_uring_setup = 425;
    public const long SYS_io_uring_enter = 426;
    public const long SYS_io_uring_register = 427;

    // io_uring_params.flags (IORING_SETUP_*).
    public const uint IORING_SETUP_CQSIZE = 1u << 3;
    public const uint IORING_SETUP_CLAMP = 1u << 4;
    public const uint IORING_SETUP_SUBMIT_ALL = 1u << 7;
    public const uint IORING_SETUP_SINGLE_ISSUER = 1u << 12;
    public const uint IORING_SETUP_DEFER_TASKRUN = 1u << 13;

    // io_uring_params.features (IORING_FEAT_*).
    public const uint IORING_FEAT_SINGLE_MMAP = 1u << 0;
    public const uint IORING_FEAT_NODROP = 1u << 1;

    // mmap(2) offsets of the three regions (IORING_OFF_*).
    public const long IORING_OFF_SQ_RING = 0;
    public const long IORING_OFF_SQES = 0x10000000;

    // io_uring_enter(2) flags.
    public const uint IORING_ENTER_GETEVENTS = 1u << 0;
    public const uint IORING_ENTER_EXT_ARG = 1u << 3;

    // io_uring_register(2) opcodes.
    public const uint IORING_REGISTER_PBUF_RING = 22;

    // Opcodes (enum io_uring_op).
    public const byte IORING_OP_POLL_ADD = 6;
    public const byte IORING_OP_ASYNC_CANCEL = 14;
    public const byte IORING_OP_READ = 22;
    public const byte IORING_OP_SEND = 26;
    public const byte IORING_OP_RECV = 27;

    // sqe->flags (IOSQE_*).
    public const byte IOSQE_BUFFER_SELECT = 1 << 5;

    // sqe->ioprio for send/recv: skip the first, likely useless, attempt and arm poll at once.
    public const ushort IORING_RECVSEND_POLL_FIRST = 1 << 0;

    // sqe->cancel_flags (op_flags) for IORING_OP_ASYNC_CANCEL: every request on the file in sqe->fd.
    public const uint IORING_ASYNC_CANCEL_ALL = 1u << 0;
    public const uint IORING_ASYNC_CANCEL_FD = 1u << 1;

    // cqe->flags: a provided buffer was used; its id is in the upper 16 bits.
    public const uint IORING_CQE_F_BUFFER = 1u << 0;
    public const int IORING_CQE_BUFFER_SHIFT = 16;

    public const uint POLLOUT = 0x004;
    public const uint POLLERR = 0x008;
    public const uint POLLHUP = 0x010;

    public const int PROT_READ = 0x1;
    public const int PROT_WRITE = 0x2;
    public const int MAP_SHARED = 0x01;
    public const int MAP_POPULATE = 0x8000;

    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;

    public const int EFD_CLOEXEC = 0x80000;

    public const int SOL_SOCKET = 1;
    public const int SO_ERROR = 4;

    public const int EPERM = 1;
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EBUSY = 16;
    public const int EINVAL = 22;
    public const int EPIPE = 32;
    public const int ENOSYS = 38;
    public const int ENOBUFS = 105;
    public const int ETIME = 62;
    public const int ECANCELED = 125;

    /// <summary>struct io_uring_params: 120 bytes; the ring offsets start at 40 (sq_off) and 80 (cq_off).</summary>
    public const int ParamsSize = 120;

    /// <summary>struct io_uring_sqe is 64 bytes, struct io_uring_cqe 16 (without SQE128/CQE32).</summary>
    public const int SqeSize = 64;
    public const int CqeSize = 16;

    [LibraryImport("libc", SetLastError = true)]
    public static partial long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    [LibraryImport("libc", SetLastError = true)]
    public static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(void* addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, byte* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsockopt(nint fd, int level, int optname, int* optval, int* optlen);

    public static int Setup(uint entries, byte* parameters) =>
        (int)syscall(SYS_io_uring_setup, entries, (long)parameters, 0, 0, 0, 0);

    public static int Enter(int ringFd, uint toSubmit, uint minComplete, uint flags, void* arg, nint argSize) =>
        (int)syscall(SYS_io_uring_enter, ringFd, toSubmit, minComplete, flags, (long)arg, argSize);

    public static int Register(int ringFd, uint opcode, void* arg, uint count) =>
        (int)syscall(SYS_io_uring_register, ringFd, opcode, (long)arg, count, 0, 0);
}
