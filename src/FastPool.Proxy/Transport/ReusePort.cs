using System.Buffers.Binary;
using System.Net.Sockets;

namespace FastPool.Proxy.Transport;

/// <summary>
/// so_reuseport: several FastPool processes listen on one port (Linux SO_REUSEPORT, socket(7)), and the kernel
/// spreads new connections over their listening sockets. That is what a rolling restart needs: the new process
/// binds the same port while the old one still serves.
/// </summary>
internal static class ReusePort
{
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;
    private const int SoReusePort = 15;
    private const int SoAttachReusePortCbpf = 51;

    /// <summary>
    /// SO_REUSEADDR alone (a restart binds while old connections are in TIME_WAIT). Set raw: .NET's ReuseAddress option
    /// also sets SO_REUSEPORT on Linux, which let a second FastPool bind the port with so_reuseport = 0.
    /// </summary>
    public static void EnableReuseAddress(Socket socket)
    {
        Span<byte> on = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(on, 1);
        socket.SetRawSocketOption(SolSocket, SoReuseAddr, on);
    }

    public static void Enable(Socket socket)
    {
        Span<byte> on = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(on, 1);
        socket.SetRawSocketOption(SolSocket, SoReusePort, on);
    }

    /// <summary>
    /// Sends the port's new connections to the socket that joined the group after this one. Closing a listener
    /// resets the connections still queued on it, so a draining process must first stop new ones from landing
    /// there. The kernel numbers a group's sockets in the order they joined and moves the last into the slot of
    /// one that closes, so a process serving alone is socket 0 and the one started next to it socket 1; a classic
    /// BPF program that returns 1 (SO_ATTACH_REUSEPORT_CBPF) picks it. With no socket 1 the kernel falls back to
    /// its usual hash, so this is harmless when nobody took over. False when the kernel refuses.
    /// </summary>
    public static unsafe bool SteerToSuccessor(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }: BPF_RET | BPF_K (0x06) with k = 1.
        ulong instruction = 0x06UL | (1UL << 32);

        // struct sock_fprog { unsigned short len; struct sock_filter *filter; } (the pointer 8-aligned on 64-bit).
        Span<byte> program = stackalloc byte[16];
        program.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(program, 1);
        BinaryPrimitives.WriteInt64LittleEndian(program[8..], (long)&instruction);
        try
        {
            socket.SetRawSocketOption(SolSocket, SoAttachReusePortCbpf, program);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
