using System.Buffers;
using System.IO.Pipelines;
using FastPool.Protocol;

namespace FastPool.Proxy.Pooling;

/// <summary>
/// Whole-message reads for the slow paths where FastPool itself talks to a server (login, reset and check
/// queries). Copies each body; the forwarding hot path never comes here.
/// </summary>
internal static class MessageIo
{
    /// <summary>Generous bound for messages FastPool reads itself (login, reset responses).</summary>
    private const int MaxInternalMessage = 1 << 20;

    public static async ValueTask<(byte Code, byte[] Body)> ReadMessageAsync(PipeReader input, CancellationToken ct)
    {
        while (true)
        {
            var result = await input.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (MessageHeader.TryPeek(buffer, out var header))
            {
                if (header.Length < 4 || header.Length > MaxInternalMessage)
                {
                    input.AdvanceTo(buffer.Start);
                    throw new ServerException(SqlState.ProtocolViolation, $"server sent an invalid message length {header.Length}");
                }

                if (buffer.Length >= header.TotalLength)
                {
                    var body = buffer.Slice(MessageHeader.Size, header.BodyLength).ToArray();
                    input.AdvanceTo(buffer.GetPosition(header.TotalLength));
                    return (header.Code, body);
                }
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                throw new ServerException(SqlState.ConnectionFailure, "server closed the connection unexpectedly");
            }

            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>
    /// Sends a simple Query and reads up to its ReadyForQuery, recording ParameterStatus and TransactionStatus.
    /// Returns the first error the server reported, or null.
    /// </summary>
    public static async ValueTask<ErrorFields?> RunQueryAsync(ServerConnection server, MessageBuilder builder, string sql, CancellationToken ct)
    {
        builder.Reset();
        builder.Query(sql);
        await server.Connection.SendAsync(builder.Written, ct).ConfigureAwait(false);
        return await ReadUntilReadyAsync(server, 1, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs a simple Query that FastPool itself needs the answer of (role checks) and returns the first row's
    /// columns as text (null for SQL NULL); throws a <see cref="ServerException"/> with the server's error.
    /// </summary>
    public static async ValueTask<string?[]> QueryFirstRowAsync(ServerConnection server, MessageBuilder builder, string sql, CancellationToken ct)
    {
        builder.Reset();
        builder.Query(sql);
        await server.Connection.SendAsync(builder.Written, ct).ConfigureAwait(false);
        string?[]? row = null;
        ErrorFields? error = null;
        while (true)
        {
            var (code, body) = await ReadMessageAsync(server.Connection.Input, ct).ConfigureAwait(false);
            var seq = new ReadOnlySequence<byte>(body);
            switch ((BackendCode)code)
            {
                case BackendCode.DataRow when row is null && BackendMessages.TryReadDataRow(seq, out var columns):
                    row = new string?[columns.Count];
                    int i = 0;
                    foreach (var value in columns)
                    {
                        row[i++] = value.IsNull ? null : System.Text.EncodingExtensions.GetString(System.Text.Encoding.UTF8, value.Data);
                    }

                    break;
                case BackendCode.ErrorResponse:
                    error ??= BackendMessageReader.ReadErrorFields(seq);
                    break;
                case BackendCode.ReadyForQuery:
                    server.TransactionStatus = BackendMessageReader.ReadReadyForQuery(seq);
                    if (error is not null)
                    {
                        throw new ServerException(error.Code, error.Message, "ERROR");
                    }

                    return row ?? throw new ServerException(SqlState.ProtocolViolation, "query returned no row", "ERROR");
            }
        }
    }

    /// <summary>Reads until <paramref name="count"/> ReadyForQuery messages have arrived.</summary>
    public static async ValueTask<ErrorFields?> ReadUntilReadyAsync(ServerConnection server, int count, CancellationToken ct)
    {
        ErrorFields? error = null;
        while (count > 0)
        {
            var (code, body) = await ReadMessageAsync(server.Connection.Input, ct).ConfigureAwait(false);
            switch ((BackendCode)code)
            {
                case BackendCode.ReadyForQuery:
                    server.TransactionStatus = BackendMessageReader.ReadReadyForQuery(new ReadOnlySequence<byte>(body));
                    count--;
                    break;
                case BackendCode.ParameterStatus:
                    server.RecordParameter(new ReadOnlySequence<byte>(body));
                    break;
                case BackendCode.ErrorResponse:
                    var fields = BackendMessageReader.ReadErrorFields(new ReadOnlySequence<byte>(body));
                    error ??= fields;
                    if (fields.Severity is "FATAL" or "PANIC")
                    {
                        server.Broken = true;
                        return error;
                    }

                    break;
                case BackendCode.CopyInResponse:
                case BackendCode.CopyBothResponse:
                    // An internal query must never start COPY IN; the connection's state is no longer known.
                    server.Broken = true;
                    return error ?? new ErrorFields { Code = SqlState.ProtocolViolation, Message = "unexpected COPY from an internal query" };
            }
        }

        return error;
    }
}
