using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Metrics;

/// <summary>
/// Counters every transaction adds to, from whichever loop thread runs it. Kept in one place, their cache line
/// moves between the cores on every add (each loop thread writes it several times per transaction); here each
/// loop adds to a stripe of its own, threads off the loops share one more, and a reader (SHOW STATS, /metrics,
/// the stats line) sums the stripes. Adds stay Interlocked, for the shared stripe and for io_threads above the core
/// count, where loops share a stripe; on a line no other core writes, that costs next to nothing.
/// </summary>
internal sealed class StripedCounters
{
    // 128 bytes per stripe: a core's adjacent-line prefetch pulls lines in pairs.
    private const int LineLongs = 16;

    // At most 16 loop stripes (loops beyond share them): each pool keeps four of these, whatever the user count.
    private static readonly int s_stripes = Math.Min(Environment.ProcessorCount, 16) + 1;

    private readonly long[] _cells;
    private readonly int _stride;

    public StripedCounters(int counters)
    {
        _stride = (counters + LineLongs - 1) / LineLongs * LineLongs;

        // One stripe's worth of padding in front: the array's header shares a line with whatever came before it.
        _cells = new long[(s_stripes + 1) * _stride];
    }

    // The calling thread's stripe number plus one (0: not yet worked out), kept so that an add costs no division.
    [ThreadStatic]
    private static int t_stripePlusOne;

    /// <summary>Where the calling thread's stripe starts; pass it to <see cref="Add(int, int, long)"/> for several adds.</summary>
    public int Stripe => _stride * StripeNumber;

    private static int StripeNumber
    {
        get
        {
            int s = t_stripePlusOne - 1;
            if (s < 0)
            {
                // A loop thread says which it is before it runs anything that counts (ConnectionTransport.EnterLoop).
                s = 1 + ((ConnectionTransport.CurrentLoop + 1) % s_stripes);
                t_stripePlusOne = s + 1;
            }

            return s;
        }
    }

    public void Add(int counter, long value) => Interlocked.Add(ref _cells[Stripe + counter], value);

    public void Add(int stripe, int counter, long value) => Interlocked.Add(ref _cells[stripe + counter], value);

    public long Read(int counter)
    {
        long total = 0;
        for (int s = 1; s <= s_stripes; s++)
        {
            total += Interlocked.Read(ref _cells[(s * _stride) + counter]);
        }

        return total;
    }
}
