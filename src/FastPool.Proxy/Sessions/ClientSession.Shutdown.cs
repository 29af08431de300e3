namespace FastPool.Proxy.Sessions;

internal sealed partial class ClientSession
{
    /// <summary>
    /// shutdown_wait_timeout passed: ends the session the way the idle timeouts do, through the client pump, so
    /// the 57P01 error is written only after forwarding stopped (never into the middle of a server message). A
    /// server caught inside a transaction is closed, and PostgreSQL rolls it back.
    /// </summary>
    public void StopForShutdown()
    {
        if (Interlocked.CompareExchange(ref _serverFailure, (int)PumpExit.AdminShutdown, -1) == -1)
        {
            _client.Input.CancelPendingRead();
        }
    }
}
