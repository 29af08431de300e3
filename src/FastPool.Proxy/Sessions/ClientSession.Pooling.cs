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
    private Task<PumpExit>? _serverPump;
    private int _serverFailure = -1;
    private bool _statementRefused;

    private async Task RunPooledAsync(ServerConnection? first)
    {
        _swap = new Lock();
        _scanner.EnablePooling(this, _mode == PoolMode.Statement);
        if (first is not null)
        {
            // The server taken at login (for its ParameterStatus set) is clean: straight back to the pool.
            lock (_swap)
            {
                _server = null;
                _errorsAtStart = first.Protocol.Errors;
                CommitTransaction(first);
            }

            first.Pool.Release(first);
        }

        StartIdleTimer();
        var exit = await PooledClientToServerAsync().ConfigureAwait(false);
        StopIdleTimer();

        ServerConnection? server;
        lock (_swap)
        {
            server = _server;
            _server = null;
        }

        // A pump that already ended (a failure, or statement mode's refusal) has nothing left to stop; stopping it
        // would leave a cancel pending on the server's reader.
        var pump = _serverPump;
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

        SetPinned(PinReasons.None);
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

            NoteActivity();
            if (result.IsCanceled)
            {
                if (TakeStopReason() is { } stop)
                {
                    return stop;
                }

                continue;
            }

            var buffer = result.Buffer;
            ServerConnection? server;
            PumpExit? exit = null;
            long forward = 0;
            long consumed = 0;
            int queries = 0;
            lock (_swap!)
            {
                server = _server;
                if (server is not null)
                {
                    exit = _scanner.ScanFromClient(buffer, server.Protocol, out forward, out consumed, out queries);
                }
            }

            NoteQueriesSent(queries);

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

                // Nothing consumed or examined: the same bytes are scanned again once a server is attached.
                input.AdvanceTo(buffer.Start);
                if (!await AttachServerAsync().ConfigureAwait(false))
                {
                    return PumpExit.AcquireFailed;
                }

                continue;
            }

            if (forward > 0)
            {
                try
                {
                    await server.Connection.SendAsync(buffer.Slice(0, forward)).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    input.AdvanceTo(buffer.Start);
                    return TakeStopReason() ?? PumpExit.ServerGone;
                }

                _traffic.AddIn(forward, queries);
            }

            if (exit.HasValue)
            {
                input.AdvanceTo(buffer.GetPosition(consumed));
                return exit.Value;
            }

            input.AdvanceTo(buffer.GetPosition(consumed), buffer.End);
            if (result.IsCompleted)
            {
                return PumpExit.ClientGone;
            }
        }
    }

    /// <summary>Takes a server for the client's next transaction and starts its server-to-client pump.</summary>
    private async Task<bool> AttachServerAsync()
    {
        // A client waiting in line for a server is not idle (query_wait_timeout bounds that wait).
        _acquiring = true;
        var server = await AcquireAsync().ConfigureAwait(false);
        _acquiring = false;
        NoteActivity();
        if (server is null)
        {
            return false;
        }

        _errorsAtStart = server.Protocol.Errors;
        _serverPump = GuardedServerToClientAsync(server);
        return true;
    }

    /// <summary>No one awaits a pump that handed its server back, so nothing may escape it unlogged.</summary>
    private async Task<PumpExit> GuardedServerToClientAsync(ServerConnection server)
    {
        try
        {
            return await PooledServerToClientAsync(server).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.Unexpected(_runtime.Logger, _context.Id, ex.Message, ex);
            return Fail(server, PumpExit.ServerProtocolViolation);
        }
    }

    private async Task<PumpExit> PooledServerToClientAsync(ServerConnection server)
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
                return Fail(server, PumpExit.ServerGone);
            }

            if (result.IsCanceled)
            {
                return PumpExit.Cancelled;
            }

            var buffer = result.Buffer;
            bool valid = _scanner.ScanFromServer(buffer, server.Protocol, out long forward, out int transactions, out var stop);
            NoteServerBatch(server.Protocol, transactions);
            if (forward > 0)
            {
                try
                {
                    await _client.SendAsync(buffer.Slice(0, forward)).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    input.AdvanceTo(buffer.GetPosition(forward));
                    return Fail(server, PumpExit.ClientGone);
                }

                _traffic.AddOut(forward, transactions);
            }

            NoteActivity();
            if (!valid)
            {
                input.AdvanceTo(buffer.GetPosition(forward));
                return Fail(server, PumpExit.ServerProtocolViolation);
            }

            if (stop == ServerStop.TransactionBlock)
            {
                // Statement mode cannot keep a server for a transaction block: the client is told and closed, as
                // PgBouncer does; the release path rolls the server back.
                input.AdvanceTo(buffer.GetPosition(forward + 6));
                _statementRefused = true;
                await _context.SendErrorAsync(SqlState.FeatureNotSupported, "transaction blocks not allowed in statement pooling mode").ConfigureAwait(false);
                return Fail(server, PumpExit.StatementModeTransaction);
            }

            if (stop == ServerStop.Idle)
            {
                var end = buffer.GetPosition(forward);
                input.AdvanceTo(end, end);
                if (TryDetach(server, more: forward < buffer.Length))
                {
                    server.Pool.Release(server);
                    return PumpExit.Released;
                }

                continue;
            }

            input.AdvanceTo(buffer.GetPosition(forward), buffer.End);
            if (result.IsCompleted)
            {
                return Fail(server, PumpExit.ServerGone);
            }
        }
    }

    /// <summary>
    /// At the end of a transaction: takes in what the client changed in it, and detaches the server unless the
    /// client is pinned, sent more meanwhile, or the server already sent more (an asynchronous message).
    /// </summary>
    private bool TryDetach(ServerConnection server, bool more)
    {
        lock (_swap!)
        {
            if (_server != server || !server.Protocol.AtMessageBoundary || server.TransactionStatus != TransactionStatus.Idle)
            {
                return false;
            }

            CommitTransaction(server);
            if (more || _pinned != PinReasons.None || !_scanner.ClientAtBoundary || !_scanner.ServerAtBoundary)
            {
                return false;
            }

            _server = null;
            return true;
        }
    }

    /// <summary>The server pump ended abnormally: the client pump is told, and ends the session.</summary>
    private PumpExit Fail(ServerConnection server, PumpExit exit)
    {
        Volatile.Write(ref _serverFailure, (int)exit);
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
                server.Broken = true;
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
            case PumpExit.AdminShutdown:
                await _context.SendErrorAsync(SqlState.AdminShutdown, "terminating connection because FastPool is shutting down (shutdown_wait_timeout)").ConfigureAwait(false);
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
