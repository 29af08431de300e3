namespace FastPool.Proxy;

internal sealed partial class ProxyRuntime
{
    private volatile bool _shuttingDown;

    /// <summary>Set when a shutdown starts (signal or SHUTDOWN), before the listeners close.</summary>
    public bool ShuttingDown => _shuttingDown;

    public void MarkShuttingDown() => _shuttingDown = true;

    private readonly CancellationTokenSource _drainOver = new();

    /// <summary>
    /// Cancelled when a safe shutdown stops waiting for clients: clients still logging in and console clients,
    /// which wait on it, are then told 57P01 and closed (sessions are stopped through their pumps).
    /// </summary>
    public CancellationToken DrainOver => _drainOver.Token;

    public void EndDrain() => _drainOver.Cancel();

    /// <summary>Why FastPool does not take new work right now (/healthz answers 503 with it), or null when it does.</summary>
    public string? NotAcceptingReason =>
        _shuttingDown ? "shutting down"
        : Control.IsSuspended ? "suspended"
        : Control.AllPaused ? "paused"
        : null;
}
