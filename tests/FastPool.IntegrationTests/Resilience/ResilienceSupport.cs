using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Sandbox;
using Npgsql;

namespace FastPool.IntegrationTests.Resilience;

/// <summary>One backend message as read off the wire: type byte and body (length word stripped).</summary>
internal sealed record PgMessage(byte Code, byte[] Body)
{
    public char Type => (char)Code;

    /// <summary>SQLSTATE ('C' field) of an ErrorResponse/NoticeResponse.</summary>
    public string? SqlState => Fields().GetValueOrDefault('C');

    /// <summary>Primary message ('M' field) of an ErrorResponse/NoticeResponse.</summary>
    public string? Text => Fields().GetValueOrDefault('M');

    public int Int32At(int offset) => BinaryPrimitives.ReadInt32BigEndian(Body.AsSpan(offset));

    /// <summary>Decodes the fields of an ErrorResponse/NoticeResponse: a type byte and a C string each, closed by a zero byte.</summary>
    public Dictionary<char, string> Fields()
    {
        var fields = new Dictionary<char, string>();
        int i = 0;
        while (i < Body.Length && Body[i] != 0)
        {
            char type = (char)Body[i++];
            int end = Array.IndexOf(Body, (byte)0, i);
            if (end < 0)
            {
                end = Body.Length;
            }

            fields[type] = Encoding.UTF8.GetString(Body, i, end - i);
            i = end + 1;
        }

        return fields;
    }

    /// <summary>The column values of a DataRow ('D'), as text (null for SQL NULL).</summary>
    public List<string?> Columns()
    {
        var values = new List<string?>();
        int count = BinaryPrimitives.ReadInt16BigEndian(Body);
        int i = 2;
        for (int c = 0; c < count; c++)
        {
            int length = Int32At(i);
            i += 4;
            values.Add(length < 0 ? null : Encoding.UTF8.GetString(Body, i, length));
            i += Math.Max(length, 0);
        }

        return values;
    }

    /// <summary>The C strings of a body from <paramref name="offset"/> on (NegotiateProtocolVersion options).</summary>
    public List<string> CStringsFrom(int offset)
    {
        var result = new List<string>();
        int i = offset;
        while (i < Body.Length)
        {
            int end = Array.IndexOf(Body, (byte)0, i);
            if (end < 0)
            {
                break;
            }

            result.Add(Encoding.UTF8.GetString(Body, i, end - i));
            i = end + 1;
        }

        return result;
    }

    public override string ToString() =>
        Code is (byte)'E' or (byte)'N' ? $"'{Type}' {SqlState}: {Text}" : $"'{Type}' ({Body.Length} bytes)";
}

/// <summary>
/// A hand-driven PostgreSQL wire client on a raw socket, for what Npgsql would never send: malformed
/// startup packets, unknown message types, oversized messages, cancel requests with made-up keys.
/// </summary>
internal sealed class RawPgClient : IAsyncDisposable
{
    public const int ProtocolVersion30 = 3 << 16;
    private const int SslRequestCode = 80877103;
    private const int CancelRequestCode = 80877102;

    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    private RawPgClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    /// <summary>True once the peer closed (EOF) or reset the connection.</summary>
    public bool PeerClosed { get; private set; }

    public static async Task<RawPgClient> ConnectAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        return new RawPgClient(tcp);
    }

    // ---- packet builders -----------------------------------------------------------------------

    public static byte[] Int32(int value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, value);
        return bytes;
    }

    /// <summary>A StartupMessage: length, version, name/value C strings, the closing zero byte (unless left off on purpose).</summary>
    public static byte[] Startup(int version, IEnumerable<(string Name, string Value)> parameters, bool terminate = true)
    {
        var body = new List<byte>();
        body.AddRange(Int32(version));
        foreach (var (name, value) in parameters)
        {
            body.AddRange(Encoding.UTF8.GetBytes(name));
            body.Add(0);
            body.AddRange(Encoding.UTF8.GetBytes(value));
            body.Add(0);
        }

        if (terminate)
        {
            body.Add(0);
        }

        return [.. Int32(body.Count + 4), .. body];
    }

    public static byte[] Startup(string database, string user = "postgres") =>
        Startup(ProtocolVersion30, [("user", user), ("database", database)]);

    public static byte[] SslRequest() => [.. Int32(8), .. Int32(SslRequestCode)];

    public static byte[] CancelRequest(int processId, int secretKey) =>
        [.. Int32(16), .. Int32(CancelRequestCode), .. Int32(processId), .. Int32(secretKey)];

    /// <summary>A typed message with a correct length word.</summary>
    public static byte[] Message(char code, byte[] body) => [(byte)code, .. Int32(body.Length + 4), .. body];

    public static byte[] Query(string sql) => Message('Q', [.. Encoding.UTF8.GetBytes(sql), 0]);

    // ---- I/O -------------------------------------------------------------------------------------

    public async Task SendAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>Reads one message; null when the peer closed the connection; TimeoutException when nothing came in time.</summary>
    public async Task<PgMessage?> ReadMessageAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var header = new byte[5];
        if (!await ReadExactlyAsync(header, cts.Token))
        {
            return null;
        }

        int length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
        if (length < 4 || length > 1 << 24)
        {
            throw new InvalidDataException($"proxy sent message '{(char)header[0]}' with invalid length {length}");
        }

        var body = new byte[length - 4];
        if (!await ReadExactlyAsync(body, cts.Token))
        {
            throw new InvalidDataException($"connection closed in the middle of message '{(char)header[0]}'");
        }

        return new PgMessage(header[0], body);
    }

    /// <summary>Reads a single byte (the answer to SSLRequest); null on EOF.</summary>
    public async Task<byte?> ReadByteAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var one = new byte[1];
        return await ReadExactlyAsync(one, cts.Token) ? one[0] : null;
    }

    /// <summary>Reads messages up to and including the first one of type <paramref name="code"/>; fails on EOF.</summary>
    public async Task<List<PgMessage>> ReadUntilAsync(char code, TimeSpan timeout)
    {
        var messages = new List<PgMessage>();
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var left = timeout - sw.Elapsed;
            var message = await ReadMessageAsync(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1))
                ?? throw new InvalidDataException($"connection closed before '{code}'; got: {string.Join(", ", messages)}");
            messages.Add(message);
            if (message.Type == code)
            {
                return messages;
            }
        }
    }

    /// <summary>Reads messages until the peer closes; Closed is false if it was still open after <paramref name="timeout"/>.</summary>
    public async Task<(List<PgMessage> Messages, bool Closed)> ReadUntilClosedAsync(TimeSpan timeout)
    {
        var messages = new List<PgMessage>();
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var left = timeout - sw.Elapsed;
            if (left <= TimeSpan.Zero)
            {
                return (messages, false);
            }

            PgMessage? message;
            try
            {
                message = await ReadMessageAsync(left);
            }
            catch (TimeoutException)
            {
                return (messages, false);
            }

            if (message is null)
            {
                return (messages, true);
            }

            messages.Add(message);
        }
    }

    /// <summary>Startup + login through a trust proxy; returns everything up to ReadyForQuery.</summary>
    public async Task<List<PgMessage>> LoginAsync(string database, string user = "postgres")
    {
        await SendAsync(Startup(database, user));
        var messages = await ReadUntilAsync('Z', TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(messages, m => m.Type == 'E');
        Assert.Contains(messages, m => m.Type == 'R' && m.Int32At(0) == 0);
        return messages;
    }

    /// <summary>Simple query; returns every message up to ReadyForQuery.</summary>
    public async Task<List<PgMessage>> QueryAsync(string sql, TimeSpan? timeout = null)
    {
        await SendAsync(Query(sql));
        return await ReadUntilAsync('Z', timeout ?? TimeSpan.FromSeconds(10));
    }

    /// <summary>Runs a query that returns one row and gives its first column.</summary>
    public async Task<string?> QueryScalarAsync(string sql)
    {
        var messages = await QueryAsync(sql);
        Assert.DoesNotContain(messages, m => m.Type == 'E');
        return messages.Last(m => m.Type == 'D').Columns()[0];
    }

    /// <summary>Closes with SO_LINGER 0: the proxy sees a TCP reset, not a polite FIN (a crashed or killed client).</summary>
    public void AbortWithReset()
    {
        _tcp.Client.LingerState = new LingerOption(true, 0);
        _tcp.Client.Close();
    }

    public void ShutdownSend() => _tcp.Client.Shutdown(SocketShutdown.Send);

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<bool> ReadExactlyAsync(byte[] buffer, CancellationToken ct)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n;
            try
            {
                n = await _stream.ReadAsync(buffer.AsMemory(read), ct);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no data from the proxy in time ({read} of {buffer.Length} bytes read)");
            }
            catch (IOException)
            {
                // Connection reset by the proxy: as good as closed for these tests.
                n = 0;
            }

            if (n == 0)
            {
                PeerClosed = true;
                if (read == 0)
                {
                    return false;
                }

                throw new InvalidDataException($"connection closed after {read} of {buffer.Length} bytes");
            }

            read += n;
        }

        return true;
    }
}

/// <summary>A database created directly on a backend for one test (so connection counts are the test's own), dropped at the end.</summary>
internal sealed class TempDatabase : IAsyncDisposable
{
    private readonly PgCluster _cluster;

    private TempDatabase(PgCluster cluster, string name)
    {
        _cluster = cluster;
        Name = name;
    }

    public string Name { get; }

    public static async Task<TempDatabase> CreateAsync(PgCluster cluster, string tag)
    {
        var name = $"res_{tag}_{Guid.NewGuid().ToString("N")[..8]}".ToLowerInvariant();
        await Backend.ExecuteAsync(cluster, $"CREATE DATABASE {name}");
        return new TempDatabase(cluster, name);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_cluster.IsRunning)
        {
            return;
        }

        try
        {
            await Backend.ExecuteAsync(_cluster, $"DROP DATABASE IF EXISTS {Name} WITH (FORCE)");
        }
        catch (NpgsqlException)
        {
            // Best effort: the server is thrown away at the end of the run anyway.
        }
    }
}

/// <summary>Direct (not proxied) access to a backend, for what the proxy really did there.</summary>
internal static class Backend
{
    public static string DirectConnectionString(PgCluster cluster, string database = "postgres") =>
        cluster.ConnectionString(database) + ";Pooling=false;Timeout=10;Command Timeout=30";

    public static async Task ExecuteAsync(PgCluster cluster, string sql, string database = "postgres")
    {
        await using var conn = new NpgsqlConnection(DirectConnectionString(cluster, database));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    public static async Task<T> ScalarAsync<T>(PgCluster cluster, string sql, params object[] parameters)
    {
        await using var conn = new NpgsqlConnection(DirectConnectionString(cluster));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (var p in parameters)
        {
            cmd.Parameters.AddWithValue(p);
        }

        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>Client backends connected to <paramref name="database"/> (optionally only as <paramref name="user"/>, in a state), except this probe.</summary>
    public static Task<long> CountAsync(PgCluster cluster, string database, string? user = null, string? state = null) =>
        ScalarAsync<long>(
            cluster,
            "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() " +
            "and datname = $1 and ($2 = '' or usename = $2) and ($3 = '' or state like $3)",
            database,
            user ?? string.Empty,
            state ?? string.Empty);

    public static async Task<bool> IsBackendAliveAsync(PgCluster cluster, int pid) =>
        await ScalarAsync<long>(cluster, "select count(*) from pg_stat_activity where pid = $1", pid) > 0;

    /// <summary>Waits until the proxy has reset the backend (DISCARD ALL ran last) and it idles in the pool.</summary>
    public static Task WaitIdleInPoolAsync(PgCluster cluster, int pid) =>
        Wait.UntilAsync(
            async () => await ScalarAsync<long>(
                cluster,
                "select count(*) from pg_stat_activity where pid = $1 and state = 'idle' and query = 'DISCARD ALL'",
                pid) == 1,
            TimeSpan.FromSeconds(10),
            $"backend {pid} reset and idle in the pool");

    public static Task<bool> TerminateAsync(PgCluster cluster, int pid) =>
        ScalarAsync<bool>(cluster, "select pg_terminate_backend($1)", pid);
}

internal static class Wait
{
    /// <summary>Polls <paramref name="condition"/> until true; fails the test with <paramref name="what"/> after <paramref name="timeout"/>.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(sw.Elapsed < timeout, $"timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            await Task.Delay(50);
        }
    }
}

internal static class ProxyChecks
{
    /// <summary>Selects a row through a fresh client of the proxy: proves it is still up and serving.</summary>
    public static async Task AssertServesAsync(ProxyHost proxy, string database = "postgres", string user = "postgres")
    {
        await using var conn = await proxy.OpenAsync(database, user);
        await using var cmd = new NpgsqlCommand("select 41 + 1", conn);
        Assert.Equal(42, await cmd.ExecuteScalarAsync());
    }

    public static async Task<int> BackendPidAsync(NpgsqlConnection conn)
    {
        await using var cmd = new NpgsqlCommand("select pg_backend_pid()", conn);
        return (int)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>A whole client session: login, one query, logout. A wait for a server may happen at login or at the query.</summary>
    public static async Task<object?> OpenAndScalarAsync(ProxyHost proxy, string database, string user, string sql)
    {
        await using var conn = await proxy.OpenAsync(database, user);
        return await ScalarAsync(conn, sql);
    }

    public static async Task<object?> ScalarAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync();
    }

    /// <summary>No "unexpected error" (an exception escaping a session) in the proxy's log.</summary>
    public static void AssertNoUnexpectedErrors(ProxyHost proxy) =>
        Assert.DoesNotContain(proxy.Logs, line => line.Contains("unexpected error", StringComparison.Ordinal));

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
