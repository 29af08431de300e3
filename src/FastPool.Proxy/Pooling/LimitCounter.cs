namespace FastPool.Proxy.Pooling;

/// <summary>A lock-free counter with a ceiling (max_db_connections, max_user_connections); 0 means no limit.</summary>
internal sealed class LimitCounter
{
    private int _count;

    public LimitCounter(int limit)
    {
        Limit = limit;
    }

    public int Limit { get; set; }

    public int Count => Volatile.Read(ref _count);

    public bool TryAcquire()
    {
        while (true)
        {
            int current = Volatile.Read(ref _count);
            int limit = Limit;
            if (limit > 0 && current >= limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _count, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    public void Release() => Interlocked.Decrement(ref _count);
}
