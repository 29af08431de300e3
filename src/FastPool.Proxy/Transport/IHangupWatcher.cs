namespace FastPool.Proxy.Transport;

/// <summary>
/// Told when a connection's peer closes or resets it, without a read parked to find out. A client waiting in line
/// for a server is watched this way: keeping a read pending for the wait and cancelling it when the server came
/// cost a park, a cancel and two resumptions per wait, most of FastPool's own CPU when 200 clients share 20 servers.
/// </summary>
internal interface IHangupWatcher
{
    /// <summary>On the transport's thread, once; keep it short (a cancel).</summary>
    void OnHangup();
}
