using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// SUSPEND, as PgBouncer documents it: what is being sent is flushed, then nothing more is forwarded either way
/// (sessions holding a server included) until RESUME. Each pump marks itself busy before it forwards bytes it
/// read and looks at the suspend gate after marking; SUSPEND closes the gate and then waits until no pump is
/// marked. A pump that finds the gate closed unmarks itself and holds the bytes it read, reading nothing more, so
/// the rest stays in the kernel's socket buffers and backpressure reaches the peer, as with PgBouncer.
/// </summary>
/// <remarks>
/// The hot path costs two plain volatile writes and one volatile read per forward. A pump's mark (a store) and
/// its read of the gate may be reordered by an x64 store buffer; SUSPEND therefore lets a moment pass after
/// closing the gate before it trusts an unmarked pump (<see cref="Admin.AdminConsole"/>), by which time any
/// store that preceded a stale read of the gate is visible.
/// </remarks>
internal sealed partial class ClientSession
{
    // How often a pump held by SUSPEND looks whether its connections were closed meanwhile (KILL, shutdown).
    private static readonly TimeSpan s_suspendedPoll = TimeSpan.FromMilliseconds(200);

    // 1 while the client pump (client to server) or the server pump (server to client) is forwarding.
    private int _clientPumpSending;
    private int _serverPumpSending;

    /// <summary>True while a pump is in the middle of forwarding (SUSPEND waits for this to end).</summary>
    public bool IsForwarding => Volatile.Read(ref _clientPumpSending) != 0 || Volatile.Read(ref _serverPumpSending) != 0;

    /// <summary>Marks the pump busy; false (and unmarked) while suspended: then await <see cref="WaitUntilResumedAsync"/>.</summary>
    private bool TryBeginForward(ref int busy)
    {
        Volatile.Write(ref busy, 1);
        if (_runtime.Control.WhenUnsuspended is null)
        {
            return true;
        }

        Volatile.Write(ref busy, 0);
        return false;
    }

    private static void EndForward(ref int busy) => Volatile.Write(ref busy, 0);

    /// <summary>Client pump: waits while suspended, then marks it busy until <see cref="EndClientForward"/>.</summary>
    private ValueTask BeginClientForwardAsync(Connection? server) =>
        TryBeginForward(ref _clientPumpSending) ? default : WaitUntilResumedAsync(clientPump: true, server);

    private void EndClientForward() => EndForward(ref _clientPumpSending);

    /// <summary>Server pump: waits while suspended, then marks it busy until <see cref="EndServerForward"/>.</summary>
    private ValueTask BeginServerForwardAsync(Connection server) =>
        TryBeginForward(ref _serverPumpSending) ? default : WaitUntilResumedAsync(clientPump: false, server);

    private void EndServerForward() => EndForward(ref _serverPumpSending);

    /// <summary>
    /// Holds a pump until RESUME, or until the client or the server connection is closed (a KILL, a shutdown): the
    /// send that follows then fails and the session ends the usual way instead of waiting for a RESUME.
    /// </summary>
    private async ValueTask WaitUntilResumedAsync(bool clientPump, Connection? server)
    {
        while (true)
        {
            var gate = _runtime.Control.WhenUnsuspended;
            if (gate is null)
            {
                if (TryBeginForward(ref clientPump ? ref _clientPumpSending : ref _serverPumpSending))
                {
                    return;
                }

                continue;
            }

            if (_client.IsClosed || server?.IsClosed == true)
            {
                // Marked anyway: the pump's send fails at once and it unmarks itself on the way out.
                Volatile.Write(ref clientPump ? ref _clientPumpSending : ref _serverPumpSending, 1);
                return;
            }

            await Task.WhenAny(gate, Task.Delay(s_suspendedPoll, _runtime.Time)).ConfigureAwait(false);
        }
    }
}
