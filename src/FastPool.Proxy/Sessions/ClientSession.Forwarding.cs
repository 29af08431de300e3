using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
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
}

/// <summary>
/// The hot path: two pumps, client to server and server to client. Each reads what the socket has, walks
/// the message headers in place (bodies are skipped, never copied, and may be far larger than the buffer),
/// and forwards the whole walked span with one send. Only headers are inspected, plus ReadyForQuery and
/// ParameterStatus bodies from the server.
/// </summary>
internal sealed partial class ClientSession
{
    // Bytes of the current message body still to pass through, per direction (a body may span many reads).
    private long _clientRemaining;
    private long _serverRemaining;
    private string? _violation;

    private async Task ForwardAsync(ServerConnection server)
    {
        var toClient = ServerToClientAsync(server);
        var toServer = ClientToServerAsync(server);
        var first = await Task.WhenAny(toServer, toClient).ConfigureAwait(false);
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
                server.Broken = true;
            }

            _client.Input.CancelPendingRead();
            var clientExit = await toServer.ConfigureAwait(false);
            if (exit == PumpExit.Cancelled)
            {
                exit = clientExit;
            }
        }

        switch (exit)
        {
            case PumpExit.ServerGone:
                server.Broken = true;
                await _context.SendErrorAsync(SqlState.ConnectionFailure, "server conn crashed?", "FATAL",
                    $"the connection to the server {server.Node.Endpoint.Host}:{server.Node.Endpoint.Port} was lost").ConfigureAwait(false);
                break;
            case PumpExit.ServerProtocolViolation:
                server.Broken = true;
                await _context.SendErrorAsync(SqlState.ProtocolViolation, "server sent an invalid message").ConfigureAwait(false);
                break;
            case PumpExit.ClientProtocolViolation:
                await _context.SendErrorAsync(SqlState.ProtocolViolation, _violation ?? "invalid message").ConfigureAwait(false);
                break;
            case PumpExit.Terminate:
                _context.CloseReason = "client close request";
                break;
            default:
                _context.CloseReason = "client unexpected eof";
                break;
        }

        await ReleaseAsync(server).ConfigureAwait(false);
    }

    /// <summary>
    /// Ends the server-to-client pump after the client side stopped. A server at a message boundary is left
    /// intact (its pending read is cancelled) so it can be reset and reused; any other server is closed.
    /// </summary>
    private async Task StopServerPumpAsync(ServerConnection server, Task<PumpExit> toClient, PumpExit clientExit)
    {
        if (clientExit is PumpExit.ServerGone or PumpExit.ServerProtocolViolation || !server.IsClean)
        {
            server.Broken = true;
            server.Connection.Abort();
        }
        else
        {
            server.Connection.Input.CancelPendingRead();
        }

        var exit = await toClient.ConfigureAwait(false);
        if (exit != PumpExit.Cancelled)
        {
            server.Broken |= exit != PumpExit.ClientGone || !server.IsClean;
        }
    }

    private async Task<PumpExit> ClientToServerAsync(ServerConnection server)
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

            if (result.IsCanceled)
            {
                return PumpExit.Cancelled;
            }

            var buffer = result.Buffer;
            var exit = ScanFromClient(buffer, server, out long forward, out long consumed, out int queries);
            if (forward > 0)
            {
                try
                {
                    await output.SendAsync(buffer.Slice(0, forward)).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    input.AdvanceTo(buffer.Start);
                    return PumpExit.ServerGone;
                }

                _runtime.Stats.AddIn(forward, queries);
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

    /// <summary>Walks client messages: counts what expects a ReadyForQuery, stops at Terminate, rejects bad frames.</summary>
    private PumpExit? ScanFromClient(in ReadOnlySequence<byte> buffer, ServerConnection server, out long forward, out long consumed, out int queries)
    {
        var reader = new SequenceReader<byte>(buffer);
        long remaining = _clientRemaining;
        queries = 0;
        PumpExit? exit = null;
        while (true)
        {
            if (remaining > 0)
            {
                long step = Math.Min(remaining, reader.Remaining);
                reader.Advance(step);
                remaining -= step;
                if (remaining > 0)
                {
                    break;
                }
            }

            if (!MessageHeader.TryPeek(ref reader, out var header))
            {
                break;
            }

            if (header.Length < 4 || header.Length > _maxPacketSize - 1)
            {
                _violation = header.Length < 4
                    ? $"invalid message length {header.Length}"
                    : $"message too large: {header.TotalLength} bytes, max_packet_size is {_maxPacketSize}";
                exit = PumpExit.ClientProtocolViolation;
                break;
            }

            switch ((FrontendCode)header.Code)
            {
                case FrontendCode.Query:
                case FrontendCode.FunctionCall:
                    Interlocked.Increment(ref server.PendingReadyForQuery);
                    queries++;
                    break;
                case FrontendCode.Sync:
                    Interlocked.Increment(ref server.PendingReadyForQuery);
                    server.UnsyncedExtended = false;
                    break;
                case FrontendCode.Parse:
                case FrontendCode.Bind:
                case FrontendCode.Describe:
                case FrontendCode.Close:
                case FrontendCode.Flush:
                    server.UnsyncedExtended = true;
                    break;
                case FrontendCode.Execute:
                    server.UnsyncedExtended = true;
                    queries++;
                    break;
                case FrontendCode.CopyData:
                case FrontendCode.CopyDone:
                case FrontendCode.CopyFail:
                    break;
                case FrontendCode.Terminate:
                    // Terminate ends the client, not the pooled server: it is swallowed here.
                    forward = reader.Consumed;
                    consumed = reader.Consumed + Math.Min(header.TotalLength, reader.Remaining);
                    _clientRemaining = 0;
                    return PumpExit.Terminate;
                default:
                    _violation = $"invalid frontend message type {header.Code}";
                    exit = PumpExit.ClientProtocolViolation;
                    break;
            }

            if (exit.HasValue)
            {
                break;
            }

            reader.Advance(MessageHeader.Size);
            remaining = header.BodyLength;
        }

        _clientRemaining = remaining;
        forward = consumed = reader.Consumed;
        return exit;
    }

    private async Task<PumpExit> ServerToClientAsync(ServerConnection server)
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
                return PumpExit.ServerGone;
            }

            if (result.IsCanceled)
            {
                return PumpExit.Cancelled;
            }

            var buffer = result.Buffer;
            bool valid = ScanFromServer(buffer, server, out long forward, out int transactions);
            if (forward > 0)
            {
                try
                {
                    await _client.SendAsync(buffer.Slice(0, forward)).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    input.AdvanceTo(buffer.GetPosition(forward));
                    return PumpExit.ClientGone;
                }

                _runtime.Stats.AddOut(forward, transactions);
            }

            if (!valid)
            {
                input.AdvanceTo(buffer.GetPosition(forward));
                return PumpExit.ServerProtocolViolation;
            }

            input.AdvanceTo(buffer.GetPosition(forward), buffer.End);
            if (result.IsCompleted)
            {
                return PumpExit.ServerGone;
            }
        }
    }

    /// <summary>Walks server messages: tracks ReadyForQuery (transaction state, outstanding count) and ParameterStatus.</summary>
    private bool ScanFromServer(in ReadOnlySequence<byte> buffer, ServerConnection server, out long forward, out int transactions)
    {
        var reader = new SequenceReader<byte>(buffer);
        long remaining = _serverRemaining;
        transactions = 0;
        bool valid = true;
        while (true)
        {
            if (remaining > 0)
            {
                long step = Math.Min(remaining, reader.Remaining);
                reader.Advance(step);
                remaining -= step;
                if (remaining > 0)
                {
                    break;
                }
            }

            if (!MessageHeader.TryPeek(ref reader, out var header))
            {
                break;
            }

            if (header.Length < 4)
            {
                valid = false;
                break;
            }

            if (header.Code == (byte)BackendCode.ReadyForQuery)
            {
                if (reader.Remaining < 6)
                {
                    break;
                }

                reader.Advance(MessageHeader.Size);
                reader.TryRead(out byte status);
                reader.Advance(header.BodyLength - 1);
                OnReadyForQuery(server, (TransactionStatus)status, ref transactions);
                continue;
            }

            if (header.Code == (byte)BackendCode.ParameterStatus)
            {
                if (reader.Remaining < header.TotalLength)
                {
                    break;
                }

                server.RecordParameter(reader.UnreadSequence.Slice(MessageHeader.Size, header.BodyLength));
                reader.Advance(header.TotalLength);
                continue;
            }

            reader.Advance(MessageHeader.Size);
            remaining = header.BodyLength;
        }

        _serverRemaining = remaining;
        forward = reader.Consumed;
        return valid;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OnReadyForQuery(ServerConnection server, TransactionStatus status, ref int transactions)
    {
        server.TransactionStatus = status;
        Interlocked.Decrement(ref server.PendingReadyForQuery);
        if (status == TransactionStatus.Idle)
        {
            transactions++;
        }
    }
}
