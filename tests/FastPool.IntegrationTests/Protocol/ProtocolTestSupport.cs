using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using FastPool.Sandbox;
using Npgsql;

namespace FastPool.IntegrationTests.Protocol;

/// <summary>Small helpers shared by the end-to-end protocol tests.</summary>
internal static class ProtocolTestSupport
{
    /// <summary>A lower-case identifier that no other test (or earlier run) uses.</summary>
    public static string UniqueName(string prefix) => prefix + "_" + Guid.NewGuid().ToString("N")[..12];

    public static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    public static async Task<object?> ScalarAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync();
    }

    public static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    public static async Task ExecAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// Polls the server until backend <paramref name="serverPid"/> is running a query containing
    /// <paramref name="queryFragment"/>, so a cancel sent afterwards really interrupts it.
    /// </summary>
    public static async Task WaitUntilActiveAsync(PgCluster server, int serverPid, string queryFragment = "pg_sleep")
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var state = await server.PsqlAsync(
                $"select state || ':' || query from pg_stat_activity where pid = {Invariant(serverPid)}");
            if (state.StartsWith("active:", StringComparison.Ordinal) && state.Contains(queryFragment, StringComparison.Ordinal))
            {
                return;
            }

            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"backend {serverPid} never became active (last: '{state}')");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// Awaits a command that is being cancelled and returns the server's error. Npgsql reports a cancelled
    /// command as OperationCanceledException whose inner exception is the server's PostgresException (57014);
    /// older versions threw the PostgresException itself. Either way the SQLSTATE must come from the server.
    /// </summary>
    public static async Task<PostgresException> AssertQueryCanceledAsync(Task running, TimeSpan timeout)
    {
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => running.WaitAsync(timeout));
        var pg = ex as PostgresException ?? ex.InnerException as PostgresException;
        Assert.True(pg is not null, $"expected a PostgresException 57014 (directly or as inner exception), got {ex}");
        Assert.Equal(PostgresErrorCodes.QueryCanceled, pg.SqlState);
        return pg;
    }

    /// <summary>
    /// Runs a client tool (psql, pgbench) and returns exit code and output; kills it after <paramref name="timeout"/>
    /// so a hung tool fails the test instead of hanging the run.
    /// </summary>
    public static async Task<ToolResult> RunToolAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var arg in arguments)
        {
            psi.ArgumentList.Add(arg);
        }

        // Never let the caller's environment redirect the tool somewhere else or make it wait for a password.
        foreach (var name in new[] { "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE", "PGOPTIONS", "PGAPPNAME" })
        {
            psi.Environment.Remove(name);
        }

        psi.Environment["PGCONNECT_TIMEOUT"] = "10";

        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + fileName);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', psi.ArgumentList)} did not finish within {timeout}; stderr: {await stderr}");
        }

        return new ToolResult(process.ExitCode, await stdout, await stderr);
    }
}

internal sealed record ToolResult(int ExitCode, string StandardOutput, string StandardError)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{StandardOutput}\n--- stderr ---\n{StandardError}";
}

/// <summary>One result set (or command) of a simple Query as seen on the wire.</summary>
internal sealed class RawResult
{
    public List<string> Columns { get; } = [];

    public List<string?[]> Rows { get; } = [];

    public string? CommandTag { get; set; }
}

/// <summary>Everything the server sent in answer to one simple Query, up to and including ReadyForQuery.</summary>
internal sealed class RawQueryResponse
{
    public List<RawResult> Results { get; } = [];

    /// <summary>SQLSTATE of the ErrorResponse, if any.</summary>
    public string? ErrorCode { get; set; }

    public int EmptyQueryResponses { get; set; }

    public char TransactionStatus { get; set; }

    /// <summary>Message type bytes in arrival order, e.g. "TDCTDCZ".</summary>
    public StringBuilder Sequence { get; } = new();
}

/// <summary>
/// A deliberately tiny, independent protocol v3 client (startup, trust auth, simple Query), so the simple
/// query protocol can be exercised exactly (Npgsql always uses the extended protocol for commands).
/// </summary>
internal sealed class RawPgClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;

    private RawPgClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public Dictionary<string, string> Parameters { get; } = new(StringComparer.Ordinal);

    public int ProcessId { get; private set; }

    public static async Task<RawPgClient> ConnectAsync(string host, int port, string user, string database)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(host, port);
        var client = new RawPgClient(socket);
        try
        {
            await client.StartupAsync(user, database);
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }

        return client;
    }

    private async Task StartupAsync(string user, string database)
    {
        var body = new MemoryStream();
        WriteInt32(body, 196608);
        foreach (var s in new[] { "user", user, "database", database, "application_name", "raw-protocol-test" })
        {
            WriteCString(body, s);
        }

        body.WriteByte(0);
        var packet = new byte[body.Length + 4];
        BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length);
        body.ToArray().CopyTo(packet, 4);
        await _stream.WriteAsync(packet);

        while (true)
        {
            var (code, msg) = await ReadMessageAsync();
            switch (code)
            {
                case 'R':
                    var auth = BinaryPrimitives.ReadInt32BigEndian(msg);
                    if (auth != 0)
                    {
                        throw new InvalidOperationException($"raw client only speaks trust, got authentication request {auth}");
                    }

                    break;
                case 'S':
                    var parts = SplitCStrings(msg);
                    Parameters[parts[0]] = parts[1];
                    break;
                case 'K':
                    ProcessId = BinaryPrimitives.ReadInt32BigEndian(msg);
                    break;
                case 'E':
                    throw new InvalidOperationException("login failed: " + ErrorCode(msg));
                case 'Z':
                    return;
            }
        }
    }

    /// <summary>Sends one Query message (may hold several statements) and collects everything up to ReadyForQuery.</summary>
    public async Task<RawQueryResponse> QueryAsync(string sql)
    {
        var text = Encoding.UTF8.GetBytes(sql);
        var msg = new byte[1 + 4 + text.Length + 1];
        msg[0] = (byte)'Q';
        BinaryPrimitives.WriteInt32BigEndian(msg.AsSpan(1), msg.Length - 1);
        text.CopyTo(msg, 5);
        await _stream.WriteAsync(msg);

        var response = new RawQueryResponse();
        RawResult? current = null;
        while (true)
        {
            var (code, body) = await ReadMessageAsync();
            response.Sequence.Append(code);
            switch (code)
            {
                case 'T':
                    current = new RawResult();
                    response.Results.Add(current);
                    int fields = BinaryPrimitives.ReadInt16BigEndian(body);
                    int pos = 2;
                    for (int i = 0; i < fields; i++)
                    {
                        int end = Array.IndexOf(body, (byte)0, pos);
                        current.Columns.Add(Encoding.UTF8.GetString(body, pos, end - pos));
                        pos = end + 1 + 18;
                    }

                    break;
                case 'D':
                    int count = BinaryPrimitives.ReadInt16BigEndian(body);
                    var row = new string?[count];
                    int p = 2;
                    for (int i = 0; i < count; i++)
                    {
                        int len = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(p));
                        p += 4;
                        if (len >= 0)
                        {
                            row[i] = Encoding.UTF8.GetString(body, p, len);
                            p += len;
                        }
                    }

                    current!.Rows.Add(row);
                    break;
                case 'C':
                    var tag = Encoding.UTF8.GetString(body, 0, body.Length - 1);
                    if (current is null)
                    {
                        current = new RawResult();
                        response.Results.Add(current);
                    }

                    current.CommandTag = tag;
                    current = null;
                    break;
                case 'I':
                    response.EmptyQueryResponses++;
                    break;
                case 'E':
                    response.ErrorCode ??= ErrorCode(body);
                    current = null;
                    break;
                case 'Z':
                    response.TransactionStatus = (char)body[0];
                    return response;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            // Terminate, as a polite client would.
            await _stream.WriteAsync(new byte[] { (byte)'X', 0, 0, 0, 4 });
        }
        catch (IOException)
        {
        }

        await _stream.DisposeAsync();
        _socket.Dispose();
    }

    private async Task<(char Code, byte[] Body)> ReadMessageAsync()
    {
        var header = new byte[5];
        await _stream.ReadExactlyAsync(header);
        int length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
        var body = new byte[length - 4];
        await _stream.ReadExactlyAsync(body);
        return ((char)header[0], body);
    }

    private static string ErrorCode(byte[] body)
    {
        int pos = 0;
        while (pos < body.Length && body[pos] != 0)
        {
            byte type = body[pos++];
            int end = Array.IndexOf(body, (byte)0, pos);
            if (type == (byte)'C')
            {
                return Encoding.UTF8.GetString(body, pos, end - pos);
            }

            pos = end + 1;
        }

        return "?????";
    }

    private static List<string> SplitCStrings(byte[] body)
    {
        var list = new List<string>();
        int pos = 0;
        while (pos < body.Length)
        {
            int end = Array.IndexOf(body, (byte)0, pos);
            if (end < 0)
            {
                break;
            }

            list.Add(Encoding.UTF8.GetString(body, pos, end - pos));
            pos = end + 1;
        }

        return list;
    }

    private static void WriteInt32(Stream s, int value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, value);
        s.Write(b);
    }

    private static void WriteCString(Stream s, string value)
    {
        s.Write(Encoding.UTF8.GetBytes(value));
        s.WriteByte(0);
    }
}
