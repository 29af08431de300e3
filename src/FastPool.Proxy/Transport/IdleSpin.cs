using System.Diagnostics;

namespace FastPool.Proxy.Transport;

/// <summary>
/// Adaptive busy polling for a transport loop that is about to block (<c>idle_spin_us</c>). Blocking costs more than
/// the syscall: the thread sleeps, and the next packet has to wake it, which on a virtual machine means an
/// inter-processor interrupt and a VM exit on the waker's side and a scheduler pass on ours. When the next event
/// usually comes within a few microseconds (a client answered from the cache, a crowd of clients), polling for it
/// instead is both faster and cheaper: pgbench cache hits went from 57k to 180k per second and from 9.3 to 5.4 µs of
/// proxy CPU each. When it usually takes longer (the server is executing, one client thinking), polling only burns
/// CPU, so the loop keeps an average of how long its idle gaps last, as seen while polling, and polls only while that
/// average is shorter than the setting (and, to notice a change, once in 64 idle periods otherwise). Each empty poll yields the core (sched_yield(2)),
/// so a server process runnable on the same core is not kept waiting by the poll.
/// </summary>
internal struct IdleSpin
{
    // While polling does not pay, one idle period in this many still polls, to notice when it would again: a gap
    // measured while blocked includes the thread's own wake-up, so it cannot tell.
    private const int ProbeEvery = 64;

    private readonly long _maxTicks;
    private long _averageGap;
    private long _idleSince;
    private long _budget;
    private int _sinceProbe;

    public IdleSpin(int maxMicros)
    {
        _maxTicks = maxMicros <= 0 ? 0 : maxMicros * Stopwatch.Frequency / 1_000_000;

        // Start as if gaps were long: polling begins once a probe has seen short ones.
        _averageGap = 2 * _maxTicks;
    }

    /// <summary>The loop found nothing to do: how long to poll before blocking (0: block now).</summary>
    public long Begin()
    {
        _budget = 0;
        if (_maxTicks == 0)
        {
            return 0;
        }

        if (_averageGap < _maxTicks || ++_sinceProbe >= ProbeEvery)
        {
            _sinceProbe = 0;
            _budget = _maxTicks;
            _idleSince = Stopwatch.GetTimestamp();
        }

        return _budget;
    }

    /// <summary>While polling: true when the poll budget from <see cref="Begin"/> is used up.</summary>
    public readonly bool Expired(long budget) => Stopwatch.GetTimestamp() - _idleSince >= budget;

    /// <summary>
    /// The idle period ended, by polling (<paramref name="polled"/>) or after blocking. Only periods that polled
    /// are measured: one the poll saw end counts its length, one it outlasted counts as twice the budget.
    /// </summary>
    public void End(bool polled)
    {
        if (_budget == 0)
        {
            return;
        }

        long gap = polled ? Stopwatch.GetTimestamp() - _idleSince : 2 * _maxTicks;

        // An exponential average over about the last eight measured gaps.
        _averageGap += (gap - _averageGap) >> 3;
    }
}
