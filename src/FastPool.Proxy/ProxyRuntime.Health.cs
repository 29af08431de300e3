namespace FastPool.Proxy;

internal sealed partial class ProxyRuntime
{
    private volatile bool _shuttingDown;

    /// <summary>Set when a shutdown starts (signal or SHUTDOWN), before the listeners close.</summary>
    public bool ShuttingDown => _shuttingDown;

    public void MarkShuttingDown() => _shuttingDown = true;

    /// <summary>Why FastPool does not take new work right now (/healthz answers 503 with it), or null when it does.</summary>
    public string? NotAcceptingReason =>
        _shuttingDown ? "shutting down"
        : Control.IsSuspended ? "suspended"
        : Control.AllPaused ? "paused"
        : null;
}
