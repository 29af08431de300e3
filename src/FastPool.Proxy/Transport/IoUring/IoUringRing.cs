using System.Net.Sockets;
using System.Runtime.InteropServices;
using static FastPool.Proxy.Transport.IoUring.IoUringNative;

namespace FastPool.Proxy.Transport.IoUring;

/// <summary>
/// One io_uring instance as io_uring(7) describes it: a submission queue the application fills and a
/// completion queue the kernel fills, both in memory shared through mmap(2), plus one provided-buffer ring
/// (io_uring_register_buf_ring(3)) that receives take their buffers from. Used by its loop thread only: the
/// ring is set up with IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN, which makes the kernel refuse submissions
/// (and registrations) from any other task and run completion work only when that thread enters the kernel
/// to wait, so nothing interrupts the loop between waits.
/// </summary>
internal sealed unsafe class IoUringRing : IDisposable
{
    /// <summary>The buffer group id receives name with IOSQE_BUFFER_SELECT.</summary>
    public const ushort BufferGroup = 0;

    private readonly int _fd;
    private readonly byte* _ringMemory;
    private readonly nuint _ringSize;
    private readonly byte* _sqes;
    private readonly nuint _sqesSize;
    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint _sqMask;
    private readonly uint _sqEntries;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly byte* _cqes;
    private uint _sqLocalTail;
    private uint _immediate;

    private readonly byte* _bufRing;
    private readonly byte* _buffers;
    private readonly int _bufferCount;
    private ushort _bufTail;

    /// <summary>Sets up the ring on the calling thread, which becomes its only submitter; throws <see cref="IoUringUnavailableException"/>.</summary>
    public IoUringRing(uint entries, int bufferCount, int bufferSize)
    {
        BufferSize = bufferSize;
        _bufferCount = bufferCount;
        byte* p = stackalloc byte[ParamsSize];
        new Span<byte>(p, ParamsSize).Clear();
        *(uint*)p = entries;

        // A completion queue four times the submission queue: each connection has a few requests in flight
        // and their completions may all land between two waits. Overflow is not lost either way (NODROP).
        *(uint*)(p + 4) = entries * 4;
        *(uint*)(p + 8) = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL
            | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        _fd = Setup(entries, p);
        if (_fd < 0)
        {
            throw IoUringUnavailableException.From("io_uring_setup", Marshal.GetLastPInvokeError());
        }

        uint features = *(uint*)(p + 20);
        if ((features & IORING_FEAT_SINGLE_MMAP) == 0 || (features & IORING_FEAT_NODROP) == 0)
        {
            _ = close(_fd);
            throw new IoUringUnavailableException("io_uring lacks IORING_FEAT_SINGLE_MMAP or IORING_FEAT_NODROP (kernel older than 5.5)");
        }

        uint sqEntries = *(uint*)p;
        uint cqEntries = *(uint*)(p + 4);
        byte* sqOff = p + 40;
        byte* cqOff = p + 80;
        nuint sqRingSize = *(uint*)(sqOff + 24) + (sqEntries * sizeof(uint));
        nuint cqRingSize = *(uint*)(cqOff + 20) + (cqEntries * (uint)CqeSize);

        // IORING_FEAT_SINGLE_MMAP: both rings live in one mapping at IORING_OFF_SQ_RING (io_uring_setup(2)).
        _ringSize = Math.Max(sqRingSize, cqRingSize);
        _ringMemory = (byte*)mmap(null, _ringSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, _fd, IORING_OFF_SQ_RING);
        _sqesSize = sqEntries * (uint)SqeSize;
        _sqes = (byte*)mmap(null, _sqesSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, _fd, IORING_OFF_SQES);
        if (_ringMemory == (byte*)-1 || _sqes == (byte*)-1)
        {
            int errno = Marshal.GetLastPInvokeError();
            UnmapAndClose();
            throw IoUringUnavailableException.From("mmap of the io_uring rings", errno);
        }

        _sqHead = (uint*)(_ringMemory + *(uint*)sqOff);
        _sqTail = (uint*)(_ringMemory + *(uint*)(sqOff + 4));
        _sqMask = *(uint*)(_ringMemory + *(uint*)(sqOff + 8));
        _sqEntries = sqEntries;
        _sqLocalTail = *_sqTail;

        // The SQ array maps ring positions to SQE indexes; identity, set once, means SQE i sits at position i.
        uint* array = (uint*)(_ringMemory + *(uint*)(sqOff + 24));
        for (uint i = 0; i < sqEntries; i++)
        {
            array[i] = i;
        }

        _cqHead = (uint*)(_ringMemory + *(uint*)cqOff);
        _cqTail = (uint*)(_ringMemory + *(uint*)(cqOff + 4));
        _cqMask = *(uint*)(_ringMemory + *(uint*)(cqOff + 8));
        _cqes = _ringMemory + *(uint*)(cqOff + 20);

        // The provided-buffer ring: bufferCount entries of struct io_uring_buf (16 bytes: addr, len, bid, resv),
        // page aligned, whose tail is the u16 at offset 14 (the resv of entry 0) that the application bumps.
        _bufRing = (byte*)NativeMemory.AlignedAlloc((nuint)(bufferCount * 16), 4096);
        new Span<byte>(_bufRing, bufferCount * 16).Clear();
        _buffers = (byte*)NativeMemory.Alloc((nuint)bufferCount * (nuint)bufferSize);
        byte* reg = stackalloc byte[40];
        new Span<byte>(reg, 40).Clear();
        *(ulong*)reg = (ulong)_bufRing;
        *(uint*)(reg + 8) = (uint)bufferCount;
        *(ushort*)(reg + 12) = BufferGroup;
        if (Register(_fd, IORING_REGISTER_PBUF_RING, reg, 1) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Dispose();
            throw IoUringUnavailableException.From("io_uring_register(IORING_REGISTER_PBUF_RING)", errno);
        }

        for (int i = 0; i < bufferCount; i++)
        {
            StageBuffer((ushort)i);
        }

        PublishBuffers();
    }

    public int BufferSize { get; }

    /// <summary>SQEs written since the last <see cref="Enter"/>.</summary>
    public uint Pending => _sqLocalTail - Volatile.Read(ref *_sqHead);

    /// <summary>
    /// A zeroed SQE for the caller to fill; the kernel sees it at the next <see cref="Enter"/>. When the queue
    /// is full, what is queued is submitted first (without waiting), which frees the whole queue.
    /// </summary>
    public byte* NextSqe()
    {
        while (_sqLocalTail - Volatile.Read(ref *_sqHead) >= _sqEntries)
        {
            // Since 5.19 (and so on every kernel this transport accepts) a completion overflow no longer
            // blocks submission, so this only fails on a broken ring.
            int error = Enter(wait: false);
            if (error < 0 && error != -EINTR)
            {
                throw new SocketException(-error);
            }
        }

        byte* sqe = _sqes + ((_sqLocalTail & _sqMask) * SqeSize);
        new Span<byte>(sqe, SqeSize).Clear();
        _sqLocalTail++;
        return sqe;
    }

    /// <summary>
    /// Notes that the request just queued normally completes during its own submission (a send with room in
    /// the socket buffer, a cancel), so <see cref="Enter"/> does not count its completion as a reason to wake.
    /// </summary>
    public void ExpectImmediate() => _immediate++;

    /// <summary>
    /// Submits everything queued and, when <paramref name="wait"/>, sleeps until a completion arrives: one
    /// system call for both. Returns 0 or a negative errno (EINTR after a signal; EBUSY/EAGAIN when the
    /// kernel's completion overflow list needs reaping first).
    /// <para>
    /// A send completes inside the submission (io_uring issues it at once, non-blocking, and posts its
    /// completion before the wait begins), so waiting for one completion would return at once for it and
    /// cost a second io_uring_enter to sleep. Waiting instead for one completion more than the requests
    /// expected to complete at once sleeps until something really happens. Should one of them not complete
    /// at once after all (a full socket buffer), a 1 ms timeout (IORING_ENTER_EXT_ARG, 5.11+; it ends the wait
    /// with ETIME) bounds how long the completions already there wait for the one missing.
    /// </para>
    /// </summary>
    public int Enter(bool wait)
    {
        // Release: the SQE contents must be visible before the kernel sees the new tail.
        Volatile.Write(ref *_sqTail, _sqLocalTail);
        uint toSubmit = _sqLocalTail - Volatile.Read(ref *_sqHead);
        uint immediate = _immediate;
        _immediate = 0;
        int n;
        if (!wait)
        {
            n = IoUringNative.Enter(_fd, toSubmit, 0, 0, null, 0);
        }
        else if (immediate == 0)
        {
            n = IoUringNative.Enter(_fd, toSubmit, 1, IORING_ENTER_GETEVENTS, null, 0);
        }
        else
        {
            // struct __kernel_timespec { s64 tv_sec; s64 tv_nsec; } and struct io_uring_getevents_arg
            // { u64 sigmask; u32 sigmask_sz; u32 min_wait_usec; u64 ts; } (24 bytes).
            long* timeout = stackalloc long[2];
            timeout[0] = 0;
            timeout[1] = 1_000_000;
            ulong* arg = stackalloc ulong[3];
            arg[0] = 0;
            arg[1] = 0;
            arg[2] = (ulong)timeout;
            n = IoUringNative.Enter(_fd, toSubmit, immediate + 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, arg, 24);
        }

        if (n >= 0)
        {
            return 0;
        }

        int errno = Marshal.GetLastPInvokeError();
        return errno == ETIME ? 0 : -errno;
    }

    /// <summary>
    /// Submits what is queued and runs the deferred completion work (IORING_SETUP_DEFER_TASKRUN posts completions only
    /// inside an io_uring_enter with GETEVENTS), without waiting for any: one busy poll of <see cref="IdleSpin"/>.
    /// </summary>
    public int Poll()
    {
        Volatile.Write(ref *_sqTail, _sqLocalTail);
        uint toSubmit = _sqLocalTail - Volatile.Read(ref *_sqHead);
        _immediate = 0;
        return IoUringNative.Enter(_fd, toSubmit, 0, IORING_ENTER_GETEVENTS, null, 0) >= 0 ? 0 : -Marshal.GetLastPInvokeError();
    }

    /// <summary>A completion is waiting in the queue.</summary>
    public bool HasCompletion => *_cqHead != Volatile.Read(ref *_cqTail);

    /// <summary>Takes the next completion, if any: user_data, res and flags of a struct io_uring_cqe.</summary>
    public bool TryPeek(out ulong userData, out int result, out uint flags)
    {
        uint head = *_cqHead;

        // Acquire: the CQE's contents are read only after the tail that published it.
        if (head == Volatile.Read(ref *_cqTail))
        {
            userData = 0;
            result = 0;
            flags = 0;
            return false;
        }

        byte* cqe = _cqes + ((head & _cqMask) * CqeSize);
        userData = *(ulong*)cqe;
        result = *(int*)(cqe + 8);
        flags = *(uint*)(cqe + 12);
        return true;
    }

    /// <summary>Frees the completion just peeked (release: the kernel may reuse its slot).</summary>
    public void Advance() => Volatile.Write(ref *_cqHead, *_cqHead + 1);

    public bool HasCompletions => *_cqHead != Volatile.Read(ref *_cqTail);

    public ReadOnlySpan<byte> Buffer(ushort id, int length) => new(_buffers + ((nuint)id * (nuint)BufferSize), length);

    /// <summary>Gives a provided buffer back to the kernel at once (the receive's bytes were copied out).</summary>
    public void RecycleBuffer(ushort id)
    {
        StageBuffer(id);
        PublishBuffers();
    }

    private void StageBuffer(ushort id)
    {
        byte* entry = _bufRing + ((_bufTail & (_bufferCount - 1)) * 16);
        *(ulong*)entry = (ulong)(_buffers + ((nuint)id * (nuint)BufferSize));
        *(uint*)(entry + 8) = (uint)BufferSize;
        *(ushort*)(entry + 12) = id;
        _bufTail++;
    }

    // Release: the entries must be visible before the kernel sees the tail that covers them.
    private void PublishBuffers() => Volatile.Write(ref *(ushort*)(_bufRing + 14), _bufTail);

    private void UnmapAndClose()
    {
        if (_ringMemory != null && _ringMemory != (byte*)-1)
        {
            _ = munmap(_ringMemory, _ringSize);
        }

        if (_sqes != null && _sqes != (byte*)-1)
        {
            _ = munmap(_sqes, _sqesSize);
        }

        _ = close(_fd);
    }

    public void Dispose()
    {
        // Closing the ring cancels what is in flight; the kernel drops its buffer-ring mapping with it.
        UnmapAndClose();
        NativeMemory.AlignedFree(_bufRing);
        NativeMemory.Free(_buffers);
    }
}

/// <summary>io_uring cannot run here: refused by the kernel, a seccomp filter, the io_uring_disabled sysctl, or limits.</summary>
internal sealed class IoUringUnavailableException : Exception
{
    public IoUringUnavailableException(string message)
        : base(message)
    {
    }

    public static IoUringUnavailableException From(string call, int errno)
    {
        string why = errno switch
        {
            ENOSYS => "the kernel has no io_uring (ENOSYS: older than 5.1, or built without CONFIG_IO_URING)",
            EPERM => $"not permitted (EPERM: a seccomp filter such as a container runtime's, or kernel.io_uring_disabled = {DisabledSysctl()})",
            ENOMEM => "out of memory for the rings (ENOMEM: check RLIMIT_MEMLOCK, ulimit -l, on kernels before 5.12)",
            EINVAL => "the kernel rejected the parameters (EINVAL: it is older than 6.1, which FastPool's io_uring transport needs)",
            _ => new SocketException(errno).Message + $" (errno {errno})",
        };
        return new IoUringUnavailableException($"{call} failed: {why}");
    }

    private static string DisabledSysctl()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/io_uring_disabled").Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "unknown";
        }
    }
}
