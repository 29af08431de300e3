namespace FastPool.Proxy.Pooling;

internal sealed partial class ServerPool
{
    /// <summary>
    /// The node is no longer used (down, detached, fenced): its idle connections are closed, connections in use
    /// are closed when released, and clients waiting in line are failed with <paramref name="error"/> at once, so
    /// the failover stage can send them to the new primary instead of letting them wait for query_wait_timeout.
    /// </summary>
    public void DetachNode(ServerException error)
    {
        BumpGeneration();
        while (TryEvictIdle())
        {
        }

        ReleaseAllWaiters(error);
    }

    /// <summary>A node that is back starts with a clean slate: server_login_retry does not hold its old failure against it.</summary>
    public void ForgetLoginError() => Volatile.Write(ref _lastLoginError, null);
}
