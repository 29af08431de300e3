using FastPool.Protocol;

namespace FastPool.Proxy.Sessions;

internal sealed partial class ClientSession
{
    private volatile bool _stoppedForShutdown;

    /// <summary>
    /// A safe shutdown's wait ended (shutdown_wait_timeout, or WAIT_FOR_SERVERS turning away a client that asks
    /// for a server): ends the session the way the idle timeouts do, through the client pump, so
    /// the 57P01 error is written only after forwarding stopped (never into the middle of a server message). A
    /// server caught inside a transaction is closed, and PostgreSQL rolls it back. A client waiting for a server
    /// (at login, or for its next transaction) stops waiting and is told the same.
    /// </summary>
    public void StopForShutdown()
    {
        _stoppedForShutdown = true;
        if (Interlocked.CompareExchange(ref _serverFailure, (int)PumpExit.AdminShutdown, -1) == -1)
        {
            _client.Input.CancelPendingRead();
        }

        try
        {
            Volatile.Read(ref _acquireCts)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The session got its server and replaced the source meanwhile: its pump sees the stop instead.
        }
    }

    /// <summary>The session ended because of <see cref="StopForShutdown"/>: tells the client so.</summary>
    private ValueTask SendShutdownErrorAsync() =>
        _context.SendErrorAsync(SqlState.AdminShutdown, Connections.ClientContext.ShutdownMessage);
}
