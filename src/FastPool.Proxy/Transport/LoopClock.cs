using System.Diagnostics;

namespace FastPool.Proxy.Transport;

/// <summary>
/// The proxy's clock. A transaction through the pool reads the time half a dozen times (idle-server lifetime,
/// the check delay, the client's wait, query latency, the server's last use), each a clock_gettime of some
/// 20-25 ns, and together about 5% of the proxy's own CPU per transaction. A transport loop reads the clock at
/// most once per <see cref="Tick"/> (per event for io_uring, per up to 16 events of a batch for epoll): the first reading after
/// it is kept, and later ones on that thread take it, off by at most the processing since the tick. Other threads
/// (timers, the console, tests' helpers) read the real clock.
/// </summary>
internal sealed class LoopClock : TimeProvider
{
    public static readonly LoopClock Instance = new();

    private const long Unread = -1;

    // 0: not inside a loop event (read the real clock); Unread: inside one, not read yet; otherwise the reading.
    [ThreadStatic]
    private static long t_now;

    private LoopClock()
    {
    }

    /// <summary>A transport loop is about to dispatch an event (or a batch): the first reading of the time is kept for the rest.</summary>
    public static void Tick() => t_now = Unread;

    /// <summary>The loop thread is about to wait: no reading may use the last event's time any more.</summary>
    public static void Idle() => t_now = 0;

    public override long GetTimestamp()
    {
        long now = t_now;
        if (now > 0)
        {
            return now;
        }

        long real = Stopwatch.GetTimestamp();
        if (now == Unread)
        {
            t_now = real;
        }

        return real;
    }
}
