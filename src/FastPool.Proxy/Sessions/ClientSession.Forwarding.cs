using System.Buffers;
using System.IO.Pipelines;
using FastPool.Protocol;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

internal enum PumpExit
{
    /// <summary>The client sent Terminate.</summary>
    Terminate,

    /// <summary>The client's socket closed or failed.</summary>
    ClientGone,

    /// <summary>The server's socket closed or failed.</summary>
    ServerGone,

    /// <summary>The read was cancelled because the other direction ended.</summary>
    Cancelled,

    /// <summary>The client broke the protocol (bad length, unknown message type, oversized message).</summary>
    ClientProtocolViolation,

    /// <summary>The server sent something that is not a valid message.</summary>
    ServerProtocolViolation,

    /// <summary>Pooling modes: the transaction ended and the server went back to the pool.</summary>
    Released,

    /// <summary>Pooling modes: no server could be had for the client's next transaction (the client was told why).</summary>
    AcquireFailed,

    /// <summary>Statement mode: the client opened a transaction block (the client was told).</summary>
    StatementModeTransaction,

    /// <summary>client_idle_timeout passed with nothing from the client.</summary>
    ClientIdleTimeout,

    /// <summary>query_timeout passed while the client's query ran.</summary>
    QueryTimeout,

    /// <summary>idle_transaction_timeout passed with the client idle inside a transaction.</summary>
    IdleTransactionTimeout,

    /// <summary>Pooling modes: a standby failed before answering a read; the read is sent again elsewhere.</summary>
    RetryRead,

    /// <summary>A safe shutdown's shutdown_wait_timeout passed with the client still connected.</summary>
    AdminShutdown,
}

/// <summary>
/// The hot path: two pumps, client to server and server to client. Each reads what the socket has, lets
/// the <see cref="ForwardingScanner"/> walk the message headers in place, and forwards the whole walked
/// span with one send straight from the read buffer.
/// </summary>
internal sealed partial class ClientSession
{
    private ForwardingScanner _scanner;

    private async Task ForwardAsync(ServerConnection server)
    {
        IQueryInspector? inspector = null;
        if (_runtime.Cache is not null)
        {
            // Its writes invalidate what other clients cached from the same database, and its SETs end its use of
            // the cache; its reads are answered from the cache while its server owes it nothing (SessionCache).
            inspector = new SessionModeCacheInspector(this);
            _sessionCacheGate = new SemaphoreSlim(1, 1);
        }

        if (Topology.Nodes.Length > 1)
        {
            // Several nodes and a session that is not balanced (load_balance_mode was off at login): its reads
            // still count in SHOW POOL_NODES' select_cnt of the primary that serves them.
            inspector = new UnbalancedReadCounter(this, inspector);
        }

        if (inspector is not null)
        {
            _scanner.EnableInspection(inspector);
        }

        StartInline(server);
        StartIdleTimer();
        var toClient = ServerToClientAsync(server);
        var toServer = ClientToServerAsync(server);
        var first = await Task.WhenAny(toServer, toClient).ConfigureAwait(false);
        StopIdleTimer();
        PumpExit exit;
        if (first == toServer)
        {
            exit = await toServer.ConfigureAwait(false);
            await StopServerPumpAsync(server, toClient, exit).ConfigureAwait(false);
        }
        else
        {
            exit = await toClient.ConfigureAwait(false);
            if (exit == PumpExit.ClientGone)
            {
                // The client can no longer be written to: end its reads too.
                _client.Abort();
            }
            else
            {
                // The server is gone or misbehaving: close it, so a client-to-server send blocked on it ends too.
                server.Broken = true;
                server.Connection.Abort();
            }

            _client.Input.CancelPendingRead();
            var clientExit = await toServer.ConfigureAwait(false);
            if (exit == PumpExit.Cancelled)
            {
                exit = clientExit;
            }
        }

        await ReportExitAsync(exit, server).ConfigureAwait(false);
        await ReleaseAsync(server).ConfigureAwait(false);
        CacheSessionEnded();
    }

    /// <summary>
    /// Ends the server-to-client pump after the client side stopped. A server at a message boundary is left
    /// intact (its pending read is cancelled) so it can be reset and reused; any other server is closed.
    /// </summary>
    private async Task StopServerPumpAsync(ServerConnection server, Task<PumpExit> toClient, PumpExit clientExit)
    {
        bool cancelled = false;
        if (clientExit is PumpExit.ServerGone or PumpExit.ServerProtocolViolation || !IsAtBoundary(server))
        {
            server.Broken = true;
            server.Connection.Abort();
        }
        else
        {
            server.Connection.Input.CancelPendingRead();
            cancelled = true;
        }

        var exit = await toClient.ConfigureAwait(false);
        if (exit != PumpExit.Cancelled)
        {
            // The pump ended on its own, so the cancel we asked for is still pending on the server's reader,
            // and the next read there would report it: that connection cannot be trusted for the next client.
            server.Broken |= cancelled || exit != PumpExit.ClientGone || !IsAtBoundary(server);
        }
    }

    /// <summary>
    /// A bad message came after good ones that went to the server. PostgreSQL runs messages in order, so its own client
    /// would get their results (a committed INSERT's CommandComplete among them) before the error for the bad one: the
    /// session ends only once the server pump has forwarded every ReadyForQuery the server owes, or the server is gone.
    /// </summary>
    /// <remarks>
    /// Unless what the server owes waits on the client itself: a COPY IN waiting for data, or an error that makes the
    /// server discard everything up to a Sync the client never sent (PostgreSQL itself would have read the bad message
    /// by then, and ended the session). Those answers never come; the server, not at a message boundary, is closed.
    /// </remarks>
    private async ValueTask AwaitAnswersBeforeViolationAsync(ServerConnection server)
    {
        var protocol = server.Protocol;
        int stuckPolls = 0;
        (int Pending, int Errors) last = default;

        // In the pooling modes the server goes back to the pool once it answered everything: then it is no longer ours to watch.
        while (Volatile.Read(ref protocol.PendingReadyForQuery) > 0 && ReferenceEquals(_server, server)
               && !server.Broken && !server.Connection.IsClosed && !_client.IsClosed)
        {
            // The state must hold a little while with nothing new from the server: an error and the ReadyForQuery of
            // a Sync that went before it often arrive together, and the pump may be between the two.
            var now = (Volatile.Read(ref protocol.PendingReadyForQuery), Volatile.Read(ref protocol.Errors));
            stuckPolls = protocol.WaitsOnClient && now == last ? stuckPolls + 1 : 0;
            last = now;
            if (stuckPolls >= StuckPolls)
            {
                return;
            }

            // A rare path (a client that breaks the protocol): a short poll keeps the pumps free of another signal.
            await Task.Delay(2).ConfigureAwait(false);
        }
    }

    // About 50 ms of polls that find the server waiting on the client and silent.
    private const int StuckPolls = 25;

    /// <summary>Clean protocol state and no message half-forwarded in either direction.</summary>
    private bool IsAtBoundary(ServerConnection server) =>
        server.IsClean && _scanner.ClientAtBoundary && _scanner.ServerAtBoundary;

    private async Task<PumpExit> ClientToServerAsync(ServerConnection server)
    {
        try
        {
            return await PumpClientToServerAsync(server).ConfigureAwait(false);
        }
        finally
        {
            _client.TrySetInlineConsumer(null);
        }
    }

    private async Task<PumpExit> PumpClientToServerAsync(ServerConnection server)
    {
        var input = _client.Input;
        var output = server.Connection;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
                return PumpExit.ClientGone;
            }

            var buffer = result.Buffer;
            ClientStep step;
            if (_clientResume is { } resumed)
            {
                // A step begun on the loop thread (ClientSession.Inline): its bytes are still at the front.
                _clientResume = null;
                step = resumed;
            }
            else
            {
                NoteActivity();
                if (result.IsCanceled)
                {
                    return TakeStopReason() ?? PumpExit.Cancelled;
                }

                if (_sessionCacheGate is not null)
                {
                    switch (await SessionCacheStepAsync(server, buffer, result.IsCompleted).ConfigureAwait(false))
                    {
                        case SessionCacheStep.NeedMore:
                            // The cache looks at the whole request (a Query, or an extended batch up to its Sync).
                            input.AdvanceTo(buffer.Start, buffer.End);
                            continue;
                        case SessionCacheStep.Answered:
                            input.AdvanceTo(buffer.GetPosition(_cacheRequestLength));
                            continue;
                        case SessionCacheStep.ClientGone:
                            input.AdvanceTo(buffer.Start);
                            return PumpExit.ClientGone;
                    }
                }

                step = ScanClient(buffer, server);
            }

            if (step.Forward > step.Sent)
            {
                if (!step.Marked)
                {
                    await BeginClientForwardAsync(output).ConfigureAwait(false);
                }

                try
                {
                    await output.SendAsync(buffer.Slice(step.Sent, step.Forward - step.Sent)).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    EndClientForward();
                    input.AdvanceTo(buffer.Start);
                    return PumpExit.ServerGone;
                }

                EndClientForward();
                _traffic.AddIn(step.Forward, step.Queries);
            }

            if (step.Exit.HasValue)
            {
                input.AdvanceTo(buffer.GetPosition(step.Consumed));
                if (step.Exit == PumpExit.ClientProtocolViolation && step.Forward > 0)
                {
                    await AwaitAnswersBeforeViolationAsync(server).ConfigureAwait(false);
                }

                return step.Exit.Value;
            }

            input.AdvanceTo(buffer.GetPosition(step.Consumed), buffer.End);
            if (result.IsCompleted)
            {
                return PumpExit.ClientGone;
            }
        }
    }

    private async Task<PumpExit> ServerToClientAsync(ServerConnection server)
    {
        try
        {
            return await PumpServerToClientAsync(server).ConfigureAwait(false);
        }
        finally
        {
            server.Connection.TrySetInlineConsumer(null);
        }
    }

    private async Task<PumpExit> PumpServerToClientAsync(ServerConnection server)
    {
        var input = server.Connection.Input;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
                SuspectLostServer(server);
                return PumpExit.ServerGone;
            }

            var buffer = result.Buffer;
            var resumed = _serverResume;
            if (resumed.HasValue)
            {
                // A step begun on the loop thread (ClientSession.Inline): its bytes are still at the front.
                _serverResume = null;
            }
            else if (result.IsCanceled)
            {
                return PumpExit.Cancelled;
            }

            // Session pooling with the cache on: the client pump answers from the cache only between two of these steps.
            var gate = _sessionCacheGate;
            if (gate is not null)
            {
                await gate.WaitAsync().ConfigureAwait(false);
            }

            try
            {
                var step = resumed ?? ScanServer(buffer, server);

                if (step.Forward > step.Sent)
                {
                    if (!step.Marked)
                    {
                        if (_capture is { Active: true })
                        {
                            FeedCapture(buffer.Slice(0, step.Forward));
                        }

                        if (step.Transactions > 0 && _cacheDirty)
                        {
                            await CacheTransactionEndedAsync(server).ConfigureAwait(false);
                        }

                        await BeginServerForwardAsync(server.Connection).ConfigureAwait(false);
                    }

                    try
                    {
                        await _client.SendAsync(buffer.Slice(step.Sent, step.Forward - step.Sent)).ConfigureAwait(false);
                    }
                    catch (Exception)
                    {
                        EndServerForward();
                        input.AdvanceTo(buffer.GetPosition(step.Forward));
                        return PumpExit.ClientGone;
                    }

                    EndServerForward();
                    _traffic.AddOut(step.Forward, step.Transactions);
                }

                NoteActivity();
                if (!step.Valid)
                {
                    input.AdvanceTo(buffer.GetPosition(step.Forward));
                    return PumpExit.ServerProtocolViolation;
                }

                input.AdvanceTo(buffer.GetPosition(step.Forward), buffer.End);
                if (result.IsCompleted)
                {
                    SuspectLostServer(server);
                    return PumpExit.ServerGone;
                }
            }
            finally
            {
                gate?.Release();
            }
        }
    }
}
