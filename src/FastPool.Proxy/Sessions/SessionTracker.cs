namespace FastPool.Proxy.Sessions;

/// <summary>Counts live client sessions so a safe shutdown can wait for the last one to end.</summary>
internal sealed class SessionTracker
{
    private int _count;
    private TaskCompletionSource _drained = NewDrained();

    public int Count => Volatile.Read(ref _count);

    public void Enter()
    {
        if (Interlocked.Increment(ref _count) == 1)
        {
            Interlocked.Exchange(ref _drained, NewDrained());
        }
    }

    public void Exit()
    {
        if (Interlocked.Decrement(ref _count) == 0)
        {
            Volatile.Read(ref _drained).TrySetResult();
        }
    }

    /// <summary>Completes when no session is left.</summary>
    public Task WhenEmptyAsync() => Count == 0 ? Task.CompletedTask : Volatile.Read(ref _drained).Task;

    private static TaskCompletionSource NewDrained() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
