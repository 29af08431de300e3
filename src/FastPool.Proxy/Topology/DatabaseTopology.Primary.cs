namespace FastPool.Proxy.Topology;

/// <summary>
/// Which node takes writes. Routing and the terminal acquire stage read <see cref="Primary"/>; only the
/// failover coordinator changes it, under <see cref="Gate"/>, so two nodes are never the primary at once.
/// </summary>
public sealed partial class DatabaseTopology
{
    private volatile Node? _primary;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The node writes go to; null while none is known (during a failover, or with every candidate down).</summary>
    public Node? Primary => _primary;

    /// <summary>
    /// Whether a check has seen <see cref="Primary"/> out of recovery. Until then node 0 is only assumed to be the
    /// primary, and losing it triggers no promotion: a node FastPool never saw as primary is not failed over from.
    /// </summary>
    internal bool PrimaryConfirmed { get; set; }

    /// <summary>The primary's WAL position at the last replication check that reached one (only the node monitor uses it).</summary>
    internal ulong LastPrimaryLsn { get; set; }

    /// <summary>Serialises every role and status decision of this entry's nodes (checks, failover, admin commands).</summary>
    internal SemaphoreSlim Gate { get; } = new(1, 1);

    /// <summary>Counts changes of which node is the primary; a check taken before one is stale (see <see cref="CheckStamp"/>).</summary>
    internal long PrimaryEpoch { get; private set; }

    internal void SetPrimary(Node? node, bool confirmed)
    {
        if (node != _primary)
        {
            PrimaryEpoch++;
        }

        _primary = node;
        PrimaryConfirmed = node is not null && confirmed;
        NotifyChanged();
    }

    /// <summary>Wakes everyone waiting for the primary or for a node's status to change.</summary>
    internal void NotifyChanged() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>The primary once it is known and up, waiting up to <paramref name="timeout"/>; null if none came.</summary>
    internal async ValueTask<Node?> WaitForPrimaryAsync(TimeSpan timeout, TimeProvider time, CancellationToken ct)
    {
        long start = time.GetTimestamp();
        while (true)
        {
            // Take the signal before looking, so a change between the look and the wait is not missed.
            var changed = Volatile.Read(ref _changed).Task;
            if (_primary is { Status: NodeStatus.Up } primary)
            {
                return primary;
            }

            var remaining = timeout - time.GetElapsedTime(start);
            if (remaining <= TimeSpan.Zero)
            {
                return null;
            }

            try
            {
                await changed.WaitAsync(remaining, time, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return null;
            }
        }
    }

    /// <summary>What a check must still find true when its answer arrives: taken just before the check starts.</summary>
    internal CheckStamp Stamp(Node node) => new(PrimaryEpoch, node.StateEpoch);
}

/// <summary>
/// The primary and the node's state as they were when a check started. A check answered before a failover and
/// applied after it (a standby "in recovery" a moment before its promotion) would undo the failover; the
/// coordinator drops a check whose stamp no longer matches.
/// </summary>
internal readonly record struct CheckStamp(long PrimaryEpoch, long NodeEpoch);
