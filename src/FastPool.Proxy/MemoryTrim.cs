namespace FastPool.Proxy;

/// <summary>
/// Gives memory back after a burst. Thousands of logins leave the GC heap full of holes: the sessions that
/// stay are spread over regions sized for the burst's garbage, and a workstation GC keeps those regions
/// committed. Measured with 10,000 idle clients: 38 MB live, 76 MB resident. When the heap is mostly holes,
/// and not more often than once a minute, one compacting collection packs the survivors and returns the
/// rest to the system (PgBouncer holds the same clients in 13 MB; an idle proxy should not sit on a burst's
/// high-water mark). Checked from the once-a-second maintenance tick.
/// </summary>
internal sealed class MemoryTrim(TimeProvider time)
{
    private const long MinimumFragmentation = 8L << 20;
    private static readonly TimeSpan MinimumInterval = TimeSpan.FromMinutes(1);

    private long _lastTrim;

    public void MaybeTrim()
    {
        if (_lastTrim != 0 && time.GetElapsedTime(_lastTrim) < MinimumInterval)
        {
            return;
        }

        var info = GC.GetGCMemoryInfo();
        long fragmented = info.FragmentedBytes;
        long committed = info.TotalCommittedBytes;
        long live = info.HeapSizeBytes - fragmented;
        if (fragmented < MinimumFragmentation && committed - live < 2 * MinimumFragmentation)
        {
            return;
        }

        if (committed < 2 * live)
        {
            return;
        }

        _lastTrim = time.GetTimestamp();
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }
}
