using System.Buffers;
using System.IO.Pipelines;
using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// Transaction and statement pooling. The client-to-server pump runs for the whole session; when a message
/// arrives and the client holds no server, it takes one through the query pipeline, brings the server's
/// settings in line with the client's, and starts a server-to-client pump for it. That pump hands the server
/// back to the pool (no reset query: the next client's settings are applied as a difference) at the message
/// boundary after the ReadyForQuery 'I' that leaves nothing outstanding: every Query and Sync the client
/// pipelined has been answered, so no pipelined batch, COPY or unsynced extended sequence is cut (55.2.4).
/// One lock orders the two pumps: a client scan (which counts what the server owes) and the hand-back check
/// never interleave, so a message can never go to a server that is being returned.
/// </summary>
internal sealed partial class ClientSession
{
    private Lock? _swap;
    private ValueTask<PumpExit> _serverPump;
    private bool _serverPumpStarted;
    private int _serverFailure = -1;
    private bool _statementRefused;

    private async Task RunPooledAsync(ServerConnection? first)
    {
        _swap = new Lock();
        _scanner.EnablePooling(this, _mode == PoolMode.Statement);
        InitPreparedStatements();
        if (_reserving && first is null)
        {
            // Session pooling over several nodes: the client's primary connection is taken with its first message,
            // as in plain session pooling; a standby's only when a read is balanced.
            if (!await WaitForFirstMessageAsync().ConfigureAwait(false))
            {
                return;
            }

            _query.Intent = Pipeline.RouteIntent.Primary;
            first = await AcquireAsync().ConfigureAwait(false);
            if (first is null)
            {
                return;
            }
        }

        if (first is not null)
        {
            // The server taken at login (for its ParameterStatus set) is clean: straight back to the pool, or kept
            // for the client's transactions in session pooling.
            lock (_swap)
            {
                _server = null;
                _errorsAtStart = first.Protocol.Errors;
                CommitTransaction(first);
                if (_reserving)
                {
                    Park(first);
                }
            }

            if (!_reserving)
            {
                first.Pool.Release(first);
            }
        }

        StartIdleTimer();
        StartPooledInline();
        var exit = await PooledClientToServerAsync().ConfigureAwait(false);
        _client.TrySetInlineConsumer(null);
        StopIdleTimer();

        ServerConnection? server;
        lock (_swap)
        {
            server = _server;
            _server = null;
        }

        // A pump that already ended (a failure, or statement mode's refusal) has nothing left to stop; stopping it
        // would leave a cancel pending on the server's reader.
        var pump = _serverPumpStarted ? _serverPump.AsTask() : null;
        _serverPumpStarted = false;
        if (server is not null && pump is not null && !(pump.IsCompleted && exit == PumpExit.StatementModeTransaction))
        {
            await StopServerPumpAsync(server, pump, exit).ConfigureAwait(false);
        }

        if (!_statementRefused)
        {
            await ReportExitAsync(exit, server).ConfigureAwait(false);
        }

        if (server is not null)
        {
            await ReleaseAsync(server).ConfigureAwait(false);
        }

        if (_reserving)
        {
            await ReleaseReservedAsync().ConfigureAwait(false);
        }

        SetPinned(PinReasons.None);
        CacheSessionEnded();
    }

    private async Task<PumpExit> PooledClientToServerAsync()
    {
        var input = _client.Input;
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
            var look = SplitLook.Standby;
            ServerConnection? server;
            PumpExit? exit = null;
            long forward = 0;
            long consumed = 0;
            int queries = 0;
            int replayMark = -1;
            long sent = 0;
            bool marked = false;
            if (_pooledClientResume is { } resumed)
            {
                // A step begun on the loop thread (ClientSession.InlinePooled): its bytes are still at the front.
                _pooledClientResume = null;
                server = resumed.Server;
                exit = resumed.Exit;
                forward = resumed.Forward;
                consumed = resumed.Consumed;
                queries = resumed.Queries;
                sent = resumed.Sent;
                marked = resumed.Marked;
                goto Scanned;
            }

            NoteActivity();
            if (result.IsCanceled)
            {
                if (TakeStopReason() is { } stop)
                {
                    if (stop == PumpExit.RetryRead)
                    {
                        if (!await RetryReadAsync().ConfigureAwait(false))
                        {
                            // The client was told why.
                            return PumpExit.AcquireFailed;
                        }

                        continue;
                    }

                    return stop;
                }

                continue;
            }

            var scan = buffer;
            if (_split)
            {
                // A transaction's standby part: only whole units the standby may run are scanned and sent.
                look = SplitLookahead(buffer, out long safe);
                if (look != SplitLook.Standby)
                {
                    if (safe == 0 && look == SplitLook.NeedMore && !result.IsCompleted)
                    {
                        input.AdvanceTo(buffer.Start, buffer.End);
                        continue;
                    }

                    scan = buffer.Slice(0, safe);
                }
            }

            bool awaitHandBack = false;
            lock (_swap!)
            {
                server = _server;
                if (server is not null && AwaitsHandBack(server))
                {
                    // Created under the lock: the server pump's hand-back (or its refusal) signals it after this.
                    _hold ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    awaitHandBack = true;
                }
                else if (server is not null)
                {
                    if (_attachedForRead && server.Protocol.AtMessageBoundary && server.TransactionStatus == TransactionStatus.Idle)
                    {
                        // The standby has answered everything: what comes now is a new read, replayable on its own.
                        StartReplay();
                    }

                    exit = _scanner.ScanFromClient(scan, server.Protocol, out forward, out consumed, out queries);
                    if (forward > 0)
                    {
                        // New work for the server: its next ReadyForQuery is another chance to hand it back.
                        _idleNotDetached = false;
                        _sentSinceAttach = true;
                        replayMark = KeepForReplay(buffer.Slice(0, forward));
                    }
                }
            }

            if (awaitHandBack)
            {
                // Nothing consumed or examined: the same bytes are read again once the server was handed back.
                input.AdvanceTo(buffer.Start);
                await WaitForHoldAsync().ConfigureAwait(false);
                _client.StopWatchingHangup();
                continue;
            }

            NoteQueriesSent(queries);

        Scanned:
            if (server is null)
            {
                if (buffer.IsEmpty && result.IsCompleted)
                {
                    input.AdvanceTo(buffer.End);
                    return PumpExit.ClientGone;
                }

                if (new System.Buffers.SequenceReader<byte>(buffer).TryPeek(out byte code) && code == (byte)FrontendCode.Terminate)
                {
                    input.AdvanceTo(buffer.End);
                    return PumpExit.Terminate;
                }

                if (_prepared is not null && !result.IsCompleted)
                {
                    var local = await AnswerWithoutServerAsync(input, buffer).ConfigureAwait(false);
                    if (local == LocalAnswer.ClientGone)
                    {
                        return PumpExit.ClientGone;
                    }

                    if (local != LocalAnswer.No)
                    {
                        continue;
                    }
                }

                if (DecideIntent(buffer, out var intent) == Lookahead.NeedMore && !result.IsCompleted)
                {
                    // Routing looks at the whole first statement (or extended batch up to its Sync): wait for the rest.
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }

                if (_runtime.Cache is not null && PrepareCacheKey(buffer, result.IsCompleted) == Lookahead.NeedMore)
                {
                    // The cache looks at the whole request (a Query, or an extended batch up to its Sync): wait for the rest.
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }

                // Nothing consumed or examined: the same bytes are scanned again once a server is attached.
                input.AdvanceTo(buffer.Start);
                if (!await AttachServerAsync(intent).ConfigureAwait(false))
                {
                    return PumpExit.AcquireFailed;
                }

                continue;
            }

            if (_scanner.Held)
            {
                // A statement that needs the primary came while a read holds a standby: forward what came before
                // it, then wait for the standby to go back to the pool; the held statement is routed afresh.
                if (!await ForwardBeforeHoldAsync(server, buffer, forward, queries).ConfigureAwait(false))
                {
                    input.AdvanceTo(buffer.Start);
                    return TakeStopReason() ?? PumpExit.ServerGone;
                }

                input.AdvanceTo(buffer.GetPosition(consumed));
                await WaitForHoldAsync().ConfigureAwait(false);
                _client.StopWatchingHangup();
                lock (_swap!)
                {
                    // Still attached (the transaction did not end where a hand-back is possible): forward it after all.
                    _bypassHold = _server is not null;
                }

                continue;
            }

            if (forward > sent)
            {
                if (!marked)
                {
                    await BeginClientForwardAsync(server.Connection).ConfigureAwait(false);
                }

                try
                {
                    // Begun inline: only plain bytes are (a rewrite is never started there), and the rest follows them.
                    await (sent > 0
                        ? server.Connection.SendAsync(buffer.Slice(sent, forward - sent))
                        : SendToServerAsync(server.Connection, buffer, forward)).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    EndClientForward();
                    input.AdvanceTo(buffer.Start);
                    switch (await SendFailedOnReadAsync(server, replayMark).ConfigureAwait(false))
                    {
                        case true:
                            // The read went elsewhere: the unsent bytes are scanned again for the new server.
                            continue;
                        case false:
                            // The read could not go elsewhere either; the client was told why.
                            return PumpExit.AcquireFailed;
                        default:
                            return TakeStopReason() ?? PumpExit.ServerGone;
                    }
                }

                EndClientForward();
                _traffic.AddIn(forward, queries);
            }

            if (exit.HasValue)
            {
                input.AdvanceTo(buffer.GetPosition(consumed));
                if (exit == PumpExit.ClientProtocolViolation && forward > 0)
                {
                    await AwaitAnswersBeforeViolationAsync(server).ConfigureAwait(false);
                }

                return exit.Value;
            }

            if (look == SplitLook.Primary)
            {
                // The rest is read again once the transaction runs on the primary.
                input.AdvanceTo(buffer.GetPosition(consumed));
                switch (await MoveToPrimaryAsync(server).ConfigureAwait(false))
                {
                    case SplitOutcome.AcquireFailed:
                        return PumpExit.AcquireFailed;
                    case SplitOutcome.Stopped:
                        return TakeStopReason() ?? PumpExit.ServerGone;
                    default:
                        continue;
                }
            }

            input.AdvanceTo(buffer.GetPosition(consumed), buffer.End);
            if (result.IsCompleted)
            {
                return PumpExit.ClientGone;
            }
        }
    }

    /// <summary>
    /// With the result cache on: the attached server has answered the whole transaction and its pump is about to hand
    /// it back, yet the client's next request is already here (the client saw the answer first). That request waits
    /// for the hand-back, so it is looked up in the cache as the first request of a new transaction; forwarded on the
    /// old server, the cache would never see it, and a repeated read would miss. Not when the server stays anyway
    /// (pinned, or its pump already declined to hand it back) or routing has its own plan for it. A server just attached
    /// and sent nothing yet is idle too, but it is waiting for this very request.
    /// </summary>
    private bool AwaitsHandBack(ServerConnection server) =>
        _runtime.Cache is not null && _sentSinceAttach && !_reserving && !_split && !_attachedForRead && !_idleNotDetached
        && _pinned == PinReasons.None && server.Protocol.AtMessageBoundary && !server.Protocol.UnsyncedExtended
        && server.TransactionStatus == TransactionStatus.Idle && _scanner.ClientAtBoundary && _scanner.ServerAtBoundary;

    private async ValueTask<bool> ForwardBeforeHoldAsync(ServerConnection server, ReadOnlySequence<byte> buffer, long forward, int queries)
    {
        if (forward == 0)
        {
            return true;
        }

        await BeginClientForwardAsync(server.Connection).ConfigureAwait(false);
        try
        {
            // As rewritten: a Bind of a kept statement before the held one names it as the server knows it.
            await SendToServerAsync(server.Connection, buffer, forward).ConfigureAwait(false);
        }
        catch (Exception)
        {
            EndClientForward();
            return false;
        }

        EndClientForward();
        _traffic.AddIn(forward, queries);
        return true;
    }

    /// <summary>Takes a server for the client's next transaction and starts its server-to-client pump.</summary>
    /// <remarks>Pooled: with more clients than servers, nearly every transaction waits here.</remarks>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> AttachServerAsync(Pipeline.RouteIntent intent)
    {
        if (_serverPumpStarted && _serverPump.IsCompleted)
        {
            // The last transaction's pump handed its server back and ended: taking its result recycles it.
            _serverPumpStarted = false;
            _ = _serverPump.Result;
        }

        // A client waiting in line for a server is not idle (query_wait_timeout bounds that wait).
        _acquiring = true;
        await PrepareRouteAsync(intent).ConfigureAwait(false);
        var server = await AcquireAsync().ConfigureAwait(false);
        _acquiring = false;
        NoteActivity();
        if (server is null)
        {
            // A cache hit takes no server: the client is answered, and its next request is looked at afresh.
            return _query.CachedResponse is { } cached && await AnswerFromCacheAsync(cached).ConfigureAwait(false);
        }

        if (_splitIntent && server.Node.Role == FastPool.Proxy.Topology.NodeRole.Standby && !await SplitIsolationAllowedAsync(server).ConfigureAwait(false))
        {
            server = await RerouteSplitToPrimaryAsync(server).ConfigureAwait(false);
            if (server is null)
            {
                return false;
            }
        }

        _capture?.Abandon();
        if (_query.CaptureFrom is not null)
        {
            await BeginCaptureIfCacheableAsync(server).ConfigureAwait(false);
        }

        Attached(server);
        _errorsAtStart = server.Protocol.Errors;
        _prepared?.OnAttach(server);
        AttachInline(server);
        _serverPump = PooledServerToClientAsync(server);
        _serverPumpStarted = true;
        return true;
    }

    /// <summary>
    /// The server-to-client pump of one transaction. Pooled (PoolingAsyncValueTaskMethodBuilder): the client pump
    /// awaits the finished pump before it attaches the next server, which returns the state machine for reuse, so
    /// a transaction allocates none. Nothing may escape it unlogged.
    /// </summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<PumpExit> PooledServerToClientAsync(ServerConnection server)
    {
        bool detached = false;
        try
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
                    return _replayable ? RetryRead(server, "connection lost") : Fail(server, PumpExit.ServerGone);
                }

                var buffer = result.Buffer;
                PooledServerStep step = default;
                if (_pooledServerResume is { } resumed)
                {
                    // A step begun on the loop thread (ClientSession.InlinePooled): its bytes are still at the front.
                    _pooledServerResume = null;
                    step = resumed;
                    goto Scanned;
                }

                if (result.IsCanceled)
                {
                    return PumpExit.Cancelled;
                }

                if (_replayable)
                {
                    // Nothing of this read's answer has reached the client yet: it is held until it is whole, so a
                    // standby that fails before then costs the client nothing.
                    switch (CheckStandbyAnswer(buffer, result.IsCompleted, server.Protocol, out var reason))
                    {
                        case StandbyAnswer.Incomplete:
                            input.AdvanceTo(buffer.Start, buffer.End);
                            continue;
                        case StandbyAnswer.Failed:
                            input.AdvanceTo(buffer.End);
                            return RetryRead(server, reason);
                        case StandbyAnswer.TooLarge:
                            _replayable = false;
                            break;
                    }
                }

                step.Valid = ScanFromServer(buffer, server.Protocol, out step.Forward, out step.Transactions, out step.Stop);
                NoteServerBatch(server.Protocol, step.Transactions);
                SuspectIfEnding(server);

            Scanned:
                if (step.Forward > step.Sent)
                {
                    if (!step.Marked)
                    {
                        if (step.Transactions > 0 && _cacheDirty)
                        {
                            await CacheTransactionEndedAsync(server).ConfigureAwait(false);
                        }

                        if (_capture is { Active: true })
                        {
                            FeedCapture(buffer.Slice(0, step.Forward));
                        }

                        _replayable = false;
                        await BeginServerForwardAsync(server.Connection).ConfigureAwait(false);
                    }

                    try
                    {
                        // Begun inline: only plain bytes are, and the rest follows them.
                        await (step.Sent > 0 ? _client.SendAsync(buffer.Slice(step.Sent, step.Forward - step.Sent)) : SendToClientAsync(buffer, step.Forward)).ConfigureAwait(false);
                    }
                    catch (Exception)
                    {
                        EndServerForward();
                        input.AdvanceTo(buffer.GetPosition(step.Forward));
                        return Fail(server, PumpExit.ClientGone);
                    }

                    EndServerForward();
                    _traffic.AddOut(step.Forward, step.Transactions);
                    if (_split)
                    {
                        // The client pump may wait for the standby to have answered everything (ClientSession.Split.cs).
                        SignalHold();
                    }
                }

                NoteActivity();
                if (!step.Valid)
                {
                    input.AdvanceTo(buffer.GetPosition(step.Forward));
                    return Fail(server, PumpExit.ServerProtocolViolation);
                }

                if (step.Stop == ServerStop.TransactionBlock)
                {
                    // Statement mode cannot keep a server for a transaction block: the client is told and closed, as
                    // PgBouncer does; the release path rolls the server back.
                    input.AdvanceTo(buffer.GetPosition(step.Forward + 6));
                    _statementRefused = true;
                    await _context.SendErrorAsync(SqlState.FeatureNotSupported, "transaction blocks not allowed in statement pooling mode").ConfigureAwait(false);
                    return Fail(server, PumpExit.StatementModeTransaction);
                }

                if (step.Stop == ServerStop.Idle)
                {
                    var end = buffer.GetPosition(step.Forward);
                    input.AdvanceTo(end, end);
                    if (TryDetach(server, more: step.Forward < buffer.Length, out long walFetch))
                    {
                        // Its replies must not reach this session once another has it.
                        DetachInline(server);
                        detached = true;
                        ReleaseAfterTransaction(server, walFetch);
                        return PumpExit.Released;
                    }

                    // Not handed back here: a statement held for the primary must not wait for a hand-back that may not come.
                    SignalHold();
                    continue;
                }

                input.AdvanceTo(buffer.GetPosition(step.Forward), buffer.End);
                if (result.IsCompleted)
                {
                    return Fail(server, PumpExit.ServerGone);
                }
            }
        }
        catch (Exception ex)
        {
            Log.Unexpected(_runtime.Logger, _context.Id, ex.Message, ex);
            return Fail(server, PumpExit.ServerProtocolViolation);
        }
        finally
        {
            if (!detached)
            {
                DetachInline(server);
            }
        }
    }

    /// <summary>
    /// At the end of a transaction: takes in what the client changed in it, and detaches the server unless the
    /// client is pinned, sent more meanwhile, or the server already sent more (an asynchronous message).
    /// </summary>
    private bool TryDetach(ServerConnection server, bool more, out long walFetch)
    {
        walFetch = 0;
        lock (_swap!)
        {
            if (_server != server || !server.Protocol.AtMessageBoundary || server.TransactionStatus != TransactionStatus.Idle)
            {
                return false;
            }

            CommitTransaction(server);
            if (more || _pinned != PinReasons.None || !_scanner.ClientAtBoundary || !_scanner.ServerAtBoundary)
            {
                _idleNotDetached = true;
                return false;
            }

            // Taken with the server, under the lock: once it is null the client pump may attach the next one.
            walFetch = TakeWrite(server);
            if (_reserving)
            {
                // Session pooling: the server stays the client's, ready for its next transaction on that node.
                Park(server);
            }

            _server = null;
            return true;
        }
    }

    /// <summary>The server pump ended abnormally: the client pump is told, and ends the session.</summary>
    private PumpExit Fail(ServerConnection server, PumpExit exit)
    {
        if (exit == PumpExit.ServerGone)
        {
            SuspectLostServer(server);
        }

        Volatile.Write(ref _serverFailure, (int)exit);
        SignalHold();
        if (exit == PumpExit.ClientGone)
        {
            _client.Abort();
        }
        else if (exit != PumpExit.StatementModeTransaction)
        {
            server.Broken = true;
            server.Connection.Abort();
        }

        _client.Input.CancelPendingRead();
        return exit;
    }

    /// <summary>Why the client pump was asked to stop: a server failure or a timeout; null for none.</summary>
    private PumpExit? TakeStopReason()
    {
        int failure = Interlocked.Exchange(ref _serverFailure, -1);
        return failure < 0 ? null : (PumpExit)failure;
    }

    private async Task ReportExitAsync(PumpExit exit, ServerConnection? server)
    {
        switch (exit)
        {
            case PumpExit.ServerGone when server is not null:
                SuspectServer(server, "a client session lost its server connection");
                server.Broken = true;
                if (server.Protocol.EndingWithFatal)
                {
                    // The server said why with a FATAL, already forwarded (a terminated backend's 57P01, a protocol
                    // violation during COPY): a second FATAL of FastPool's after it would only confuse the client.
                    _context.CloseReason = "server closed the connection after a FATAL error";
                    break;
                }

                await _context.SendErrorAsync(SqlState.ConnectionFailure, "server conn crashed?", "FATAL",
                    $"the connection to the server {server.Node.Endpoint.Host}:{server.Node.Endpoint.Port} was lost").ConfigureAwait(false);
                break;
            case PumpExit.ServerProtocolViolation:
                if (server is not null)
                {
                    server.Broken = true;
                }

                await _context.SendErrorAsync(SqlState.ProtocolViolation, "server sent an invalid message").ConfigureAwait(false);
                break;
            case PumpExit.ClientProtocolViolation:
                await _context.SendErrorAsync(SqlState.ProtocolViolation, _scanner.Violation ?? "invalid message").ConfigureAwait(false);
                break;
            case PumpExit.ClientIdleTimeout:
                await _context.SendErrorAsync(SqlState.ProtocolViolation, "client_idle_timeout").ConfigureAwait(false);
                break;
            case PumpExit.IdleTransactionTimeout:
                await _context.SendErrorAsync(SqlState.ProtocolViolation, "idle transaction timeout").ConfigureAwait(false);
                break;
            case PumpExit.QueryTimeout:
                if (server is not null)
                {
                    // Mid-query: its answer can no longer reach anyone.
                    server.Broken = true;
                }

                await _context.SendErrorAsync(SqlState.ProtocolViolation, "query_timeout").ConfigureAwait(false);
                break;
            case PumpExit.AdminShutdown:
                await SendShutdownErrorAsync().ConfigureAwait(false);
                break;
            case PumpExit.Terminate:
                _context.CloseReason = "client close request";
                break;
            case PumpExit.AcquireFailed:
                break;
            default:
                _context.CloseReason = "client unexpected eof";
                break;
        }
    }
}
