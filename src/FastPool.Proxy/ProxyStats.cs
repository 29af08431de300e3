namespace FastPool.Proxy;

/// <summary>
/// Process-wide counters for the periodic stats line. Pumps add once per read batch, not per message,
/// so the Interlocked traffic stays far below the message rate.
/// </summary>
internal sealed class ProxyStats
{
    private long _transactions;
    private long _queries;
    private long _bytesIn;
    private long _bytesOut;
    private int _clients;
    private int _pinnedClients;

    public long Transactions => Interlocked.Read(ref _transactions);

    public long Queries => Interlocked.Read(ref _queries);

    public long BytesIn => Interlocked.Read(ref _bytesIn);

    public long BytesOut => Interlocked.Read(ref _bytesOut);

    public int Clients => Volatile.Read(ref _clients);

    public void AddIn(long bytes, int queries)
    {
        Interlocked.Add(ref _bytesIn, bytes);
        if (queries > 0)
        {
            Interlocked.Add(ref _queries, queries);
        }
    }

    public void AddOut(long bytes, int transactions)
    {
        Interlocked.Add(ref _bytesOut, bytes);
        if (transactions > 0)
        {
            Interlocked.Add(ref _transactions, transactions);
        }
    }

    /// <summary>Clients that keep their server in transaction/statement pooling (LISTEN, temp tables, ...).</summary>
    public int PinnedClients => Volatile.Read(ref _pinnedClients);

    public void PinnedChanged(bool pinned)
    {
        if (pinned)
        {
            Interlocked.Increment(ref _pinnedClients);
        }
        else
        {
            Interlocked.Decrement(ref _pinnedClients);
        }
    }

    public int ClientOpened() => Interlocked.Increment(ref _clients);

    public void ClientClosed() => Interlocked.Decrement(ref _clients);
}
