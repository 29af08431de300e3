using System.Diagnostics;

namespace FastPool.Proxy.Transport;

/// <summary>
/// The proxy's clock. A transaction through the pool reads the time half a dozen times (idle-server lifetime,
/// the check delay, the client's wait, query latency, the server's last use), each a clock_gettime of some
/// 20-25 ns, and together about 5% of the proxy's own CPU per transaction. A transport loop reads the clock once
/// per event it dispatches (<see cref="Tick"/>), and every reading on that thread while the event runs takes
/// that value: it is the time the bytes came in, late by at most the event's own processing. Other threads
/// (timers, the console, tests' helpers) read the real clock.
/// </summary>
internal sealed class LoopClock : TimeProvider
{
    public static readonly LoopClock Instance = new();

    [ThreadStatic]
    private static long t_now;

    private LoopClock()
    {
    }

    /// <summary>A transport loop is about to dispatch an event: its readings of the time are taken now.</summary>
    public static void Tick() => t_now = Stopwatch.GetTimestamp();

    /// <summary>The loop thread is about to wait: no reading may use the last event's time any more.</summary>
    public static void Idle() => t_now = 0;

    public override long GetTimestamp()
    {
        long now = t_now;
        return now != 0 ? now : Stopwatch.GetTimestamp();
    }
}
