using FastPool.Proxy.Transport;
using FastPool.Proxy.Transport.IoUring;

namespace FastPool.Proxy.Tests.Transport;

/// <summary>When the kernel refuses io_uring, FastPool runs on epoll and its startup line names the cause an operator can act on.</summary>
public sealed class IoUringUnavailableTests
{
    [Theory]
    [InlineData(1, "seccomp")]
    [InlineData(1, "io_uring_disabled")]
    [InlineData(38, "ENOSYS")]
    [InlineData(12, "RLIMIT_MEMLOCK")]
    public void Refusal_says_why(int errno, string expected)
    {
        var error = IoUringUnavailableException.From("io_uring_setup", errno);

        Assert.StartsWith("io_uring_setup failed: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Io_uring_is_never_chosen_by_auto()
    {
        using var transport = ConnectionTransport.Create(TransportKind.Auto, 1, _ => { });

        Assert.DoesNotContain("io_uring", transport.Name, StringComparison.Ordinal);
    }

    [Fact]
    public void Io_uring_by_name_starts_here_and_says_so()
    {
        // This machine's kernel allows io_uring (the integration suite runs on it).
        using var transport = ConnectionTransport.Create(TransportKind.IoUring, 1, _ => { });

        Assert.StartsWith("io_uring", transport.Name, StringComparison.Ordinal);
        Assert.Equal("transport = io_uring", transport.Reason);
    }

    [Theory]
    [InlineData(1, "seccomp")]
    [InlineData(12, "RLIMIT_MEMLOCK")]
    [InlineData(38, "ENOSYS")]
    public void Io_uring_refused_by_the_kernel_falls_back_to_epoll_and_says_why(int errno, string cause)
    {
        using var transport = ConnectionTransport.Create(TransportKind.IoUring, 1, _ => { },
            (_, _, _) => throw IoUringUnavailableException.From("io_uring_setup", errno));

        Assert.StartsWith("epoll", transport.Name, StringComparison.Ordinal);
        Assert.StartsWith("transport = io_uring was refused (io_uring_setup failed: ", transport.Reason, StringComparison.Ordinal);
        Assert.Contains(cause, transport.Reason, StringComparison.Ordinal);
    }
}
