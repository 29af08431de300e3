using System.Buffers;
using System.Runtime.CompilerServices;
using FastPool.Protocol;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// The hot-path walk over forwarded bytes, one per session. It reads message headers in place and skips
/// bodies (which may be far larger than one read: the remaining length carries over to the next read),
/// so nothing is copied and nothing is allocated. Only ReadyForQuery and ParameterStatus bodies from the
/// server are looked into. Framing: PostgreSQL docs 55.7 "Message Formats".
/// </summary>
internal struct ForwardingScanner
{
    /// <summary>Largest Query/Parse FastPool waits for whole to look at its text in the transaction-pooling modes.</summary>
    public const int InspectLimit = 1 << 20;


    private readonly int _maxPacketSize;

    // Transaction and statement pooling: who looks at query texts, and where the server scan stops.
    private IQueryInspector? _inspector;
    private bool _stopAtIdle;
    private bool _statementMode;
    private PreparedStatements? _prepared;
    private bool _routeBinds;

    // Where errors are counted by SQLSTATE class (/metrics); null counts nothing. The sniffer reads the class
    // from the ErrorResponse body while it is forwarded, so no error is held back for it.
    private Metrics.IErrorClassCounter? _errors;
    private Metrics.ErrorClassSniffer _sniffer;

    // Bytes of the current message body still to pass through, per direction.
    private long _clientRemaining;
    private long _serverRemaining;

    public ForwardingScanner(int maxPacketSize)
    {
        _maxPacketSize = maxPacketSize;
        _clientRemaining = 0;
        _serverRemaining = 0;
        Violation = null;
        _inspector = null;
        _stopAtIdle = false;
        _statementMode = false;
        _errors = null;
        _sniffer = default;
        _prepared = null;
        _routeBinds = false;
    }

    /// <summary>Counts every ErrorResponse the server sends by its SQLSTATE class.</summary>
    public void CountErrorsIn(Metrics.IErrorClassCounter errors) => _errors = errors;

    /// <summary>
    /// Transaction pooling (or statement pooling with <paramref name="statementMode"/>): query texts go to
    /// <paramref name="inspector"/>, and a server scan stops right after the ReadyForQuery that ends the last
    /// outstanding transaction, so the server can be handed back at that message boundary.
    /// </summary>
    public void EnablePooling(IQueryInspector inspector, bool statementMode)
    {
        _inspector = inspector;
        _stopAtIdle = true;
        _statementMode = statementMode;
    }

    /// <summary>
    /// Session pooling with the result cache on: query texts go to <paramref name="inspector"/> (for the writes they
    /// make), nothing else changes. With the cache off no inspector is set, and the scan costs what it did.
    /// </summary>
    public void EnableInspection(IQueryInspector inspector) => _inspector = inspector;

    /// <summary>
    /// Transaction pooling with max_prepared_statements: named statements are kept by <paramref name="prepared"/>,
    /// which rewrites the messages that name them and takes out the replies to what it adds.
    /// </summary>
    public void EnablePreparedStatements(PreparedStatements prepared) => _prepared = prepared;

    /// <summary>
    /// Replication routing with kept prepared statements: a Bind of a named statement goes to the inspector, which
    /// may hold it back (the statement needs the primary and the client holds a standby), as a Query or Parse.
    /// </summary>
    public void EnableBindRouting() => _routeBinds = _prepared is not null && _inspector is not null;

    /// <summary>Why the last client scan stopped with a protocol violation.</summary>
    public string? Violation { get; private set; }

    /// <summary>The client stream is at a message boundary again (a replay of whole messages starts there).</summary>
    public void ResetClientBoundary() => _clientRemaining = 0;

    /// <summary>The last client scan stopped before a Query or Parse the inspector held back.</summary>
    public bool Held { get; private set; }

    /// <summary>True when the client side is between messages (nothing half-forwarded).</summary>
    public readonly bool ClientAtBoundary => _clientRemaining == 0;

    /// <summary>True when the server side is between messages.</summary>
    public readonly bool ServerAtBoundary => _serverRemaining == 0;

    /// <summary>Bytes of the client message being forwarded that have not arrived yet (SHOW SOCKETS' pkt_remain).</summary>
    public readonly long ClientRemaining => _clientRemaining;

    /// <summary>Bytes of the server message being forwarded that have not arrived yet.</summary>
    public readonly long ServerRemaining => _serverRemaining;

    /// <summary>
    /// Walks client messages: counts what expects a ReadyForQuery, stops at Terminate (which is not forwarded:
    /// it ends the client, not the pooled server), and rejects bad frames. <paramref name="forward"/> bytes go to
    /// the server; <paramref name="consumed"/> bytes are done with.
    /// </summary>
    public PumpExit? ScanFromClient(in ReadOnlySequence<byte> buffer, ServerProtocolState server, out long forward, out long consumed, out int queries)
    {
        var reader = new SequenceReader<byte>(buffer);
        long remaining = _clientRemaining;
        queries = 0;
        Held = false;
        PumpExit? exit = null;
        while (true)
        {
            if (!SkipBody(ref reader, ref remaining) || !MessageHeader.TryPeek(ref reader, out var header))
            {
                break;
            }

            // The length counts itself, so anything below 4 is impossible; max_packet_size bounds the whole message.
            if (header.Length < 4 || header.TotalLength > _maxPacketSize)
            {
                Violation = header.Length < 4
                    ? $"invalid message length {header.Length}"
                    : $"message too large: {header.TotalLength} bytes, max_packet_size is {_maxPacketSize}";
                exit = PumpExit.ClientProtocolViolation;
                break;
            }

            if (_inspector is not null && header.Code is (byte)FrontendCode.Query or (byte)FrontendCode.Parse && header.TotalLength <= InspectLimit)
            {
                // The text is looked at whole, before any of it is forwarded: wait for the rest of the message.
                if (reader.Remaining < header.TotalLength)
                {
                    break;
                }

                if (!Inspect(reader.UnreadSequence.Slice(MessageHeader.Size, header.BodyLength), header.Code == (byte)FrontendCode.Parse))
                {
                    // Held back (routing: it needs another node): nothing of it is forwarded or consumed.
                    Held = true;
                    break;
                }
            }

            if (_routeBinds && header.Code == (byte)FrontendCode.Bind)
            {
                if (!_prepared!.TryFindBound(reader, header, out var bound, out bool boundNamed))
                {
                    break;
                }

                if (boundNamed && !_inspector!.InspectBind(bound))
                {
                    Held = true;
                    break;
                }
            }

            // How many of the message's first bytes the prepared-statement rewrite replaced (0: none).
            long replaced = 0;
            if (_prepared is not null)
            {
                replaced = _prepared.OnClientMessage(ref reader, header, server);
                if (replaced < 0)
                {
                    break;
                }
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
                    forward = reader.Consumed;
                    consumed = reader.Consumed + Math.Min(header.TotalLength, reader.Remaining);
                    _clientRemaining = 0;
                    return PumpExit.Terminate;
                default:
                    Violation = $"invalid frontend message type {header.Code}";
                    exit = PumpExit.ClientProtocolViolation;
                    break;
            }

            if (exit.HasValue)
            {
                break;
            }

            if (replaced > 0)
            {
                reader.Advance(replaced);
                remaining = header.TotalLength - replaced;
                continue;
            }

            reader.Advance(MessageHeader.Size);
            remaining = header.BodyLength;
        }

        _clientRemaining = remaining;
        forward = consumed = reader.Consumed;
        return exit;
    }

    /// <summary>Query (55.7: the text, a C string) or Parse (statement name, then the text) body to the inspector.</summary>
    private readonly bool Inspect(in ReadOnlySequence<byte> body, bool parse)
    {
        if (!TryGetQueryText(body, parse, out var text, out bool named))
        {
            return true;
        }

        // With prepared statements kept by FastPool a named statement no longer ties the client to its server: the
        // inspector routes it by its text, and follows what it does to the session when it is executed (Bind).
        return _inspector!.Inspect(text, named);
    }

    /// <summary>The query text of a Query or Parse body (55.7), and whether a Parse names its statement.</summary>
    public static bool TryGetQueryText(in ReadOnlySequence<byte> body, bool parse, out ReadOnlySequence<byte> text, out bool named)
    {
        if (body.IsSingleSegment)
        {
            // The usual case, looked at twice per routed transaction (routing, then forwarding): two vectorized
            // searches over one span, no sequence reader.
            var span = body.FirstSpan;
            int start = 0;
            named = false;
            if (parse)
            {
                int nameEnd = span.IndexOf((byte)0);
                if (nameEnd < 0)
                {
                    text = default;
                    return false;
                }

                named = nameEnd > 0;
                start = nameEnd + 1;
            }

            int length = span[start..].IndexOf((byte)0);
            text = body.Slice(start, length < 0 ? span.Length - start : length);
            return true;
        }

        var reader = new SequenceReader<byte>(body);
        named = false;
        text = default;
        if (parse)
        {
            if (!reader.TryAdvanceTo(0))
            {
                return false;
            }

            named = reader.Consumed > 1;
        }

        var rest = reader.UnreadSequence;
        long end = rest.PositionOf((byte)0) is { } nul ? rest.Slice(0, nul).Length : rest.Length;
        text = rest.Slice(0, end);
        return true;
    }

    /// <summary>
    /// Walks server messages: tracks ReadyForQuery (transaction status, outstanding count) and ParameterStatus.
    /// Returns false on a frame no PostgreSQL server sends.
    /// </summary>
    public bool ScanFromServer(in ReadOnlySequence<byte> buffer, ServerProtocolState server, out long forward, out int transactions) =>
        ScanFromServer(buffer, server, out forward, out transactions, out _);

    /// <summary>
    /// As above; in the pooling modes <paramref name="stop"/> says the scan ended at a point where the server may
    /// go back to the pool (<see cref="ServerStop.Idle"/>, the ReadyForQuery included in <paramref name="forward"/>)
    /// or, in statement mode, at a ReadyForQuery inside a transaction block (<see cref="ServerStop.TransactionBlock"/>:
    /// that 6-byte message follows <paramref name="forward"/> and is consumed but not to be forwarded).
    /// </summary>
    public bool ScanFromServer(in ReadOnlySequence<byte> buffer, ServerProtocolState server, out long forward, out int transactions, out ServerStop stop)
    {
        var reader = new SequenceReader<byte>(buffer);
        long remaining = _serverRemaining;
        transactions = 0;
        stop = ServerStop.None;
        bool valid = true;
        while (true)
        {
            if (_sniffer.Active)
            {
                SniffErrorBody(ref reader, remaining);
                if (_sniffer.Fatal)
                {
                    server.EndingWithFatal = true;
                }
            }

            if (!SkipBody(ref reader, ref remaining) || !MessageHeader.TryPeek(ref reader, out var header))
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
                // ReadyForQuery is always exactly Byte1('Z') Int32(5) Byte1(status) (55.7).
                if (header.Length != 5)
                {
                    valid = false;
                    break;
                }

                if (reader.Remaining < 6)
                {
                    break;
                }

                long before = reader.Consumed;
                reader.Advance(MessageHeader.Size);
                reader.TryRead(out byte status);
                OnReadyForQuery(server, (TransactionStatus)status, ref transactions);
                _prepared?.OnReadyForQuery(server);
                if (_stopAtIdle)
                {
                    if (_statementMode && status != (byte)TransactionStatus.Idle)
                    {
                        _serverRemaining = 0;
                        forward = before;
                        stop = ServerStop.TransactionBlock;
                        return true;
                    }

                    if (status == (byte)TransactionStatus.Idle && server.AtMessageBoundary)
                    {
                        stop = ServerStop.Idle;
                        break;
                    }
                }

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

            if (header.Code == (byte)BackendCode.ErrorResponse)
            {
                server.Errors++;
                server.ErrorSinceReady = true;
                server.CopyIn = false;
                if (_errors is not null)
                {
                    _sniffer.Start();
                }
                _prepared?.OnError(server);
            }

            if (_prepared is not null && header.Code is (byte)BackendCode.ParseComplete or (byte)BackendCode.CloseComplete && header.Length == 4)
            {
                // The reply may be to a message FastPool added: it is looked at whole (5 bytes).
                if (reader.Remaining < MessageHeader.Size)
                {
                    break;
                }

                _prepared.OnCompletion(header.Code, reader.Consumed, server);
                reader.Advance(MessageHeader.Size);
                continue;
            }

            if (header.Code is (byte)BackendCode.CopyInResponse or (byte)BackendCode.CopyBothResponse)
            {
                server.CopyIn = true;
            }
            else if (header.Code == (byte)BackendCode.CommandComplete)
            {
                server.CopyIn = false;
            }

            reader.Advance(MessageHeader.Size);
            remaining = header.BodyLength;
        }

        _serverRemaining = remaining;
        forward = reader.Consumed;
        return valid;
    }

    /// <summary>Shows the error body bytes at hand (before they are skipped) to the sniffer; ends it with the body.</summary>
    private void SniffErrorBody(ref SequenceReader<byte> reader, long remaining)
    {
        long available = Math.Min(remaining, reader.Remaining);
        if (available > 0)
        {
            _sniffer.Feed(reader.UnreadSequence.Slice(0, Math.Min(available, Metrics.ErrorClassSniffer.Limit)), _errors!);
        }

        if (_sniffer.Active && available == remaining)
        {
            _sniffer.End(_errors!);
        }
    }

    /// <summary>Passes over the rest of a body already being forwarded; false when the buffer ends inside it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool SkipBody(ref SequenceReader<byte> reader, ref long remaining)
    {
        if (remaining == 0)
        {
            return true;
        }

        long step = Math.Min(remaining, reader.Remaining);
        reader.Advance(step);
        remaining -= step;
        return remaining == 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OnReadyForQuery(ServerProtocolState server, TransactionStatus status, ref int transactions)
    {
        server.TransactionStatus = status;
        server.ErrorSinceReady = false;
        server.CopyIn = false;
        Interlocked.Decrement(ref server.PendingReadyForQuery);
        if (status == TransactionStatus.Idle)
        {
            transactions++;
        }
    }
}

/// <summary>Why a server scan stopped early in the pooling modes.</summary>
internal enum ServerStop : byte
{
    None,

    /// <summary>After a ReadyForQuery 'I' with nothing outstanding: the transaction is over.</summary>
    Idle,

    /// <summary>Statement mode: a ReadyForQuery that says a transaction block is open.</summary>
    TransactionBlock,
}

/// <summary>Looks at the text of each Query and Parse a client sends, in the transaction-pooling modes.</summary>
internal interface IQueryInspector
{
    /// <param name="sql">The query text (without its terminating zero byte).</param>
    /// <param name="namedStatement">A Parse that creates a named (session-level) prepared statement.</param>
    /// <returns>False to hold the message back: the scan stops before it, forwarding nothing of it.</returns>
    bool Inspect(in ReadOnlySequence<byte> sql, bool namedStatement);

    /// <summary>A Bind of a named statement FastPool keeps (null: one the client never prepared); false holds it back.</summary>
    bool InspectBind(PreparedStatements.ClientStatement? statement);
}
