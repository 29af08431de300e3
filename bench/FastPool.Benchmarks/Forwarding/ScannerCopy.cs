using System.Buffers;
using System.Runtime.CompilerServices;
using FastPool.Protocol;
using FastPool.Proxy.Sessions;

namespace FastPool.Benchmarks.Forwarding;

/// <summary>
/// The per-server state the scanners touch: a stand-in for the fields of
/// <c>FastPool.Proxy.Pooling.ServerConnection</c> they read and write.
/// </summary>
internal sealed class ScannedServer
{
    public int PendingReadyForQuery;

    public TransactionStatus TransactionStatus { get; set; } = TransactionStatus.Idle;

    public bool UnsyncedExtended { get; set; }

    public string? LastParameter { get; private set; }

    public void RecordParameter(in ReadOnlySequence<byte> body)
    {
        if (BackendMessageReader.TryReadParameterStatus(body, out var name, out _))
        {
            LastParameter = name;
        }
    }
}

/// <summary>
/// COPY, for benchmarking only, of <c>ClientSession.ScanFromClient</c> and <c>ClientSession.ScanFromServer</c>
/// (src/FastPool.Proxy/Sessions/ClientSession.Forwarding.cs). The logic is the same line for line: header walk,
/// remaining-body streaming across reads, ReadyForQuery status, ParameterStatus recording. Only the owner changed
/// (this class instead of ClientSession, <see cref="ScannedServer"/> instead of ServerConnection). Keep in sync by
/// hand until the scanners move into a struct the proxy and this benchmark share.
/// </summary>
internal sealed class ScannerCopy
{
    private readonly int _maxPacketSize;
    private long _clientRemaining;
    private long _serverRemaining;

    public ScannerCopy(int maxPacketSize)
    {
        _maxPacketSize = maxPacketSize;
    }

    public string? Violation { get; private set; }

    public PumpExit? ScanFromClient(in ReadOnlySequence<byte> buffer, ScannedServer server, out long forward, out long consumed, out int queries)
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
                Violation = header.Length < 4
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

            reader.Advance(MessageHeader.Size);
            remaining = header.BodyLength;
        }

        _clientRemaining = remaining;
        forward = consumed = reader.Consumed;
        return exit;
    }

    public bool ScanFromServer(in ReadOnlySequence<byte> buffer, ScannedServer server, out long forward, out int transactions)
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
    private static void OnReadyForQuery(ScannedServer server, TransactionStatus status, ref int transactions)
    {
        server.TransactionStatus = status;
        Interlocked.Decrement(ref server.PendingReadyForQuery);
        if (status == TransactionStatus.Idle)
        {
            transactions++;
        }
    }
}
