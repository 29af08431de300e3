using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Connections;
using FastPool.Proxy.Pipeline;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Topology;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// One logged-in client. In session pool mode it takes a server connection at login through the query
/// pipeline, applies the client's startup parameters to it, and then forwards bytes both ways until either
/// side leaves; the server connection is then reset and returned, or closed if its state is unknown.
/// </summary>
internal sealed partial class ClientSession
{
    // Startup parameters that are about the connection, not settings to carry to the server.
    private static readonly HashSet<string> s_nonSettings = new(StringComparer.OrdinalIgnoreCase) { "user", "database", "replication", "options" };

    private readonly ClientContext _context;
    private readonly ProxyRuntime _runtime;
    private readonly Connection _client;
    private readonly QueryContext _query;
    private readonly Metrics.PoolTraffic _traffic;
    private (string Name, string Value)[]? _clientSettings;
    private int _processId;
    private int _secretKey;
    private volatile ServerConnection? _server;
    private bool _acquireAbandoned;
    private bool _watchSawEof;

    // Reused across acquisitions while nothing cancels it: the watch or a login's give-up cancels it, and the
    // next acquisition then takes a fresh one.
    private CancellationTokenSource? _acquireCts;

    public ClientSession(ClientContext context)
    {
        _context = context;
        _runtime = context.Runtime;
        _client = context.Connection;
        Topology = _runtime.GetTopology(context.Database!);
        _query = new QueryContext(this);
        _scanner = new ForwardingScanner(context.Config.MaxPacketSize);
        _traffic = _runtime.Stats.For(context.DatabaseName, context.User);
        _scanner.CountErrorsIn(_traffic);
        context.Session = this;
    }

    public DatabaseTopology Topology { get; }

    public DatabaseConfig Database => _context.Database!;

    public string DatabaseName => _context.DatabaseName;

    public string User => _context.User;

    /// <summary>The server connection this client holds right now, for cancel requests and the admin console.</summary>
    public ServerConnection? CurrentServer => _server;

    /// <summary>
    /// The server this client is using, marked as being canceled (<see cref="ServerConnection.BeginCancel"/>), or null
    /// when it holds none. Marked first and checked again after: a server the client handed back in between is left
    /// alone, and one it hands back after will not reach another client before the cancel is delivered.
    /// </summary>
    public ServerConnection? TakeServerForCancel()
    {
        var server = _server;
        if (server is null)
        {
            return null;
        }

        server.BeginCancel();
        if (ReferenceEquals(_server, server))
        {
            return server;
        }

        if (server.EndCancel())
        {
            server.Pool.Release(server);
        }

        return null;
    }

    /// <summary>When the client started waiting for a server (TimeProvider timestamp); 0 while it is not waiting.</summary>
    public long WaitingSinceTicks { get; private set; }

    /// <summary>When the client last asked for a server (TimeProvider timestamp), for SHOW CLIENTS' request_time.</summary>
    public long LastRequestTicks { get; private set; }

    /// <summary>Bytes of the client's message being forwarded still to come (SHOW SOCKETS; read from another thread, for display).</summary>
    public long ClientPacketRemaining => _scanner.ClientRemaining;

    /// <summary>Bytes of the server's message being forwarded to this client still to come.</summary>
    public long ServerPacketRemaining => _scanner.ServerRemaining;

    /// <summary>The key of the pool this client takes servers from, as PoolManager names pools.</summary>
    public string PoolDatabase => Database.Name == "*" ? "*" + DatabaseName : Database.Name;

    public bool KeyMatches(byte[] key)
    {
        Span<byte> mine = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(mine, _secretKey);
        return CryptographicOperations.FixedTimeEquals(mine, key);
    }

    public async Task RunAsync()
    {
        (_processId, _secretKey) = _runtime.Cancels.Register(this);
        _runtime.Sessions.Enter();
        try
        {
            // The login answer needs the server's ParameterStatus set: from the pool's last login when there
            // is one, so this client need not wait for a free server just to log in; otherwise from a server
            // taken now, which the session then keeps.
            var firstPool = _runtime.Pools.GetPool(Database, DatabaseName, User, Topology.Primary ?? Topology.Nodes[0]);
            var welcome = firstPool.WelcomeParameters;
            InitPooling(firstPool.Settings.Mode);
            ServerConnection? server = null;
            if (welcome is null)
            {
                // No server has logged in yet. Wait for one, but stop waiting as soon as another client's
                // server brings the parameters: in a burst of logins only the first pool_size clients hold servers.
                using var welcomeKnown = new CancellationTokenSource();
                CancelWhenDone(firstPool.WelcomeKnown, welcomeKnown);
                server = await AcquireAsync(welcomeKnown.Token).ConfigureAwait(false);
                if (server is null)
                {
                    if (!_acquireAbandoned)
                    {
                        return;
                    }

                    welcome = firstPool.WelcomeParameters!;
                }
            }

            var welcomeSet = server?.Parameters ?? (IEnumerable<KeyValuePair<string, string>>)welcome!;
            if (PerTransaction)
            {
                AddWelcome(server is null ? WelcomeValues(welcomeSet) : welcomeSet);
            }

            if (!await SendWelcomeAsync(welcomeSet, overrideWithClient: server is null).ConfigureAwait(false))
            {
                if (server is not null)
                {
                    await ReleaseAsync(server).ConfigureAwait(false);
                }

                return;
            }

            if (PerTransaction)
            {
                await RunPooledAsync(server).ConfigureAwait(false);
                return;
            }

            if (server is null)
            {
                if (!await WaitForFirstMessageAsync().ConfigureAwait(false))
                {
                    return;
                }

                server = await AcquireAsync().ConfigureAwait(false);
                if (server is null)
                {
                    return;
                }
            }

            await ForwardAsync(server).ConfigureAwait(false);
        }
        finally
        {
            _runtime.Cancels.Unregister(_processId);
            _runtime.Sessions.Exit();
        }
    }

    private static void CancelWhenDone(Task welcomeKnown, CancellationTokenSource cts)
    {
        if (welcomeKnown.IsCompleted)
        {
            cts.Cancel();
            return;
        }

        _ = welcomeKnown.ContinueWith(
            static (_, state) =>
            {
                try
                {
                    ((CancellationTokenSource)state!).Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // The session already got its server and moved on.
                }
            },
            cts,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    /// <summary>
    /// Takes a server through the query pipeline and applies the client's settings to it; null after telling the
    /// client why not, or (with <see cref="_acquireAbandoned"/> set) when <paramref name="giveUp"/> ended the wait.
    /// </summary>
    /// <remarks>
    /// The common case in transaction pooling, an idle server whose settings already match, completes
    /// synchronously: no client watch, no token source, no state machine. Only a client that really waits gets
    /// the watch on its socket.
    /// </remarks>
    private ValueTask<ServerConnection?> AcquireAsync(CancellationToken giveUp = default)
    {
        _acquireAbandoned = false;
        long waitStart = _runtime.Time.GetTimestamp();
        LastRequestTicks = waitStart;
        WaitingSinceTicks = waitStart;
        if (_acquireCts is null || _acquireCts.IsCancellationRequested)
        {
            _acquireCts?.Dispose();
            _acquireCts = new CancellationTokenSource();
        }

        _query.Reset();
        _query.Aborted = _acquireCts.Token;
        var pending = _runtime.QueryPipeline(_query);
        if (pending.IsCompletedSuccessfully)
        {
            if (_query.Server is null)
            {
                // Answered from the result cache: no server was needed.
                WaitingSinceTicks = 0;
                return ValueTask.FromResult<ServerConnection?>(null);
            }

            var server = _query.Server;
            _traffic.AddWait(_runtime.Time.GetElapsedTime(waitStart));
            _server = server;
            WaitingSinceTicks = 0;
            var settings = PerTransaction ? BuildPooledSettingsQuery(server) : BuildSettingsQuery(server);
            if (settings is null)
            {
                return ValueTask.FromResult<ServerConnection?>(server);
            }

            return ApplySettingsAsync(server, settings);
        }

        return AcquireSlowAsync(pending, _acquireCts, giveUp, waitStart);
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ServerConnection?> AcquireSlowAsync(ValueTask pending, CancellationTokenSource clientGone, CancellationToken giveUp, long waitStart)
    {
        ServerConnection server;
        // The transport tells of a hang-up when it can (epoll); otherwise a read is kept pending to find out.
        var watch = pending.IsCompleted || _client.TryWatchHangup(this) ? default : WatchClientWhileWaitingAsync(clientGone);
        var giveUpRegistration = giveUp.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), clientGone);
        try
        {
            await pending.ConfigureAwait(false);
            if (_query.Server is null)
            {
                // Answered from the result cache (after a pause): no server was needed.
                WaitingSinceTicks = 0;
                await giveUpRegistration.DisposeAsync().ConfigureAwait(false);
                await StopWatchAsync(watch).ConfigureAwait(false);
                return null;
            }

            server = _query.Server;
            _traffic.AddWait(_runtime.Time.GetElapsedTime(waitStart));
        }
        catch (ServerException ex)
        {
            WaitingSinceTicks = 0;
            await giveUpRegistration.DisposeAsync().ConfigureAwait(false);
            await StopWatchAsync(watch).ConfigureAwait(false);
            await _context.SendErrorAsync(ex.SqlState, ex.Message, ex.Severity == "ERROR" ? "FATAL" : ex.Severity, ex.Detail).ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException) when (clientGone.IsCancellationRequested)
        {
            WaitingSinceTicks = 0;
            await giveUpRegistration.DisposeAsync().ConfigureAwait(false);
            await StopWatchAsync(watch).ConfigureAwait(false);
            if (_stoppedForShutdown && !_watchSawEof)
            {
                await SendShutdownErrorAsync().ConfigureAwait(false);
                return null;
            }

            if (giveUp.IsCancellationRequested && !_client.IsClosed && !_watchSawEof)
            {
                _acquireAbandoned = true;
                return null;
            }

            _context.CloseReason = "client disconnected while waiting for a server";
            return null;
        }

        await giveUpRegistration.DisposeAsync().ConfigureAwait(false);
        await StopWatchAsync(watch).ConfigureAwait(false);

        _server = server;
        WaitingSinceTicks = 0;
        var settings = PerTransaction ? BuildPooledSettingsQuery(server) : BuildSettingsQuery(server);
        return settings is null ? server : await ApplySettingsAsync(server, settings).ConfigureAwait(false);
    }

    /// <summary>Runs the statements that make a server match the client's session; null (and the server released) on failure.</summary>
    private async ValueTask<ServerConnection?> ApplySettingsAsync(ServerConnection server, string settings)
    {
        try
        {
            var error = await MessageIo.RunQueryAsync(server, _context.Builder, settings, CancellationToken.None).ConfigureAwait(false);
            if (error is null && PerTransaction)
            {
                SettingsApplied(server);
            }

            if (error is not null)
            {
                // The server is left half way between two clients' settings, and whatever failed here may fail the
                // next client too (one that made SERIALIZABLE its default poisons a standby for every statement):
                // closed, not pooled.
                server.Broken = true;
                await _context.SendErrorAsync(error.Code, error.Message, "FATAL", error.Detail).ConfigureAwait(false);
                await ReleaseAsync(server).ConfigureAwait(false);
                return null;
            }

            return server;
        }
        catch (Exception ex)
        {
            server.Broken = true;
            await _context.SendErrorAsync(SqlState.ConnectionFailure, "server connection failed: " + ServerConnector.Describe(ex)).ConfigureAwait(false);
            await ReleaseAsync(server).ConfigureAwait(false);
            return null;
        }
    }

    /// <summary>
    /// While the client waits for a server, keeps a read pending on its socket so that a client that leaves
    /// gives up its place in line and its max_client_conn slot at once, not at query_wait_timeout. Nothing is
    /// consumed: the pump later reads the same bytes.
    /// </summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WatchClientWhileWaitingAsync(CancellationTokenSource clientGone)
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
                _watchSawEof = true;
                clientGone.Cancel();
                return;
            }

            if (result.IsCanceled)
            {
                input.AdvanceTo(result.Buffer.Start);
                return;
            }

            if (result.IsCompleted)
            {
                input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                _watchSawEof = true;
                clientGone.Cancel();
                return;
            }

            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>
    /// A client waiting for a server (<see cref="AcquireSlowAsync"/>) or for a hold (ClientSession.Routing.cs) hung
    /// up, as the transport saw: it gives up its place in line, or its held statement goes out for the pump to move on.
    /// </summary>
    void IHangupWatcher.OnHangup()
    {
        _watchSawEof = true;
        SignalHold();
        try
        {
            Volatile.Read(ref _acquireCts)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The session ended meanwhile.
        }
    }

    /// <summary>Ends the watch and awaits it (exactly once: it is a pooled ValueTask).</summary>
    private async ValueTask StopWatchAsync(ValueTask watch)
    {
        _client.StopWatchingHangup();
        if (!watch.IsCompleted)
        {
            // The watch only steps back on a cancel, so it may finish right here: the session then goes on on
            // this thread instead of waiting for a thread-pool hop.
            _client.CancelPendingReadInline();
        }

        await watch.ConfigureAwait(false);
        if (_stoppedForShutdown)
        {
            // The watch took the cancel that was meant for the client pump: ask again, so the pump sees the stop.
            _client.Input.CancelPendingRead();
        }
    }

    /// <summary>AuthenticationOk, the ParameterStatus set, FastPool's own BackendKeyData, ReadyForQuery (55.2.1).</summary>
    private async Task<bool> SendWelcomeAsync(IEnumerable<KeyValuePair<string, string>> parameters, bool overrideWithClient)
    {
        var b = _context.Builder;
        b.Reset();
        b.AuthenticationOk();
        foreach (var kv in parameters)
        {
            // A cached set describes another client's server: report this client's own values where it set them.
            string value = overrideWithClient ? ClientValueOr(kv.Key, kv.Value) : kv.Value;
            b.ParameterStatus(kv.Key, value);
        }

        b.BackendKeyData(_processId, _secretKey);
        b.ReadyForQuery(TransactionStatus.Idle);
        try
        {
            await _client.SendAsync(b.Written).ConfigureAwait(false);
            return true;
        }
        catch (Exception)
        {
            _context.CloseReason = "client unexpected eof during login";
            return false;
        }
    }

    private IEnumerable<KeyValuePair<string, string>> WelcomeValues(IEnumerable<KeyValuePair<string, string>> parameters)
    {
        foreach (var kv in parameters)
        {
            yield return new(kv.Key, ClientValueOr(kv.Key, kv.Value));
        }
    }

    private string ClientValueOr(string name, string fallback)
    {
        foreach (var (key, value) in ClientSettings)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                fallback = value;
            }
        }

        return fallback;
    }

    /// <summary>Waits until the client sends something that needs a server; false when it leaves first.</summary>
    private async Task<bool> WaitForFirstMessageAsync()
    {
        var input = _client.Input;
        ReadResult result;
        try
        {
            result = await input.ReadAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            _context.CloseReason = "client unexpected eof";
            return false;
        }

        var buffer = result.Buffer;
        if (buffer.IsEmpty)
        {
            input.AdvanceTo(buffer.End);
            _context.CloseReason = "client unexpected eof";
            return false;
        }

        if (new System.Buffers.SequenceReader<byte>(buffer).TryPeek(out byte code) && code == (byte)FrontendCode.Terminate)
        {
            input.AdvanceTo(buffer.End);
            _context.CloseReason = "client close request";
            return false;
        }

        // Nothing consumed, nothing examined: the pump reads the same bytes again.
        input.AdvanceTo(buffer.Start);
        return true;
    }

    /// <summary>
    /// One set_config call for every startup parameter (and "-c name=value" in options) whose value differs from
    /// what the server reported, so the client's settings reach whichever pooled server it gets.
    /// </summary>
    private string? BuildSettingsQuery(ServerConnection server)
    {
        var ignored = _context.Config.IgnoreStartupParameters;
        StringBuilder? sql = null;
        foreach (var (name, value) in ClientSettings)
        {
            if (ignored.Contains(name, StringComparer.OrdinalIgnoreCase) || s_nonSettings.Contains(name))
            {
                continue;
            }

            if (server.Parameters.TryGetValue(name, out var current) && current == value)
            {
                continue;
            }

            if (!IsSettingName(name))
            {
                continue;
            }

            // set_config takes the value as PostgreSQL reads a startup or config-file value, so a list such as
            // search_path=a,b stays a list; SET name TO 'a,b' would make it one quoted element.
            sql = sql is null ? new StringBuilder("SELECT ") : sql.Append(", ");
            sql.Append("pg_catalog.set_config('").Append(name).Append("', '").Append(value.Replace("'", "''", StringComparison.Ordinal)).Append("', false)");
        }

        return sql?.ToString();
    }

    /// <summary>
    /// The client's settings from its startup packet, in order (a later one wins), read once per session: the welcome
    /// looks each reported parameter up in them, and every attach in transaction pooling compares them with the server's.
    /// </summary>
    private (string Name, string Value)[] ClientSettings => _clientSettings ??= EnumerateSettings(_context.Startup!).ToArray();

    private static IEnumerable<(string Name, string Value)> EnumerateSettings(StartupPacket startup)
    {
        foreach (var kv in startup.Parameters)
        {
            yield return (kv.Key, kv.Value);
        }

        // options: "-c name=value" or "--name=value", separated by spaces; "\ " escapes a space (20.1.4, libpq "options").
        var options = startup.GetParameter("options");
        if (string.IsNullOrWhiteSpace(options))
        {
            yield break;
        }

        var words = SplitOptions(options);
        for (int i = 0; i < words.Count; i++)
        {
            string word = words[i];
            string? assignment = null;
            if (word == "-c" && i + 1 < words.Count)
            {
                assignment = words[++i];
            }
            else if (word.StartsWith("-c", StringComparison.Ordinal) && word.Length > 2)
            {
                assignment = word.Substring(2);
            }
            else if (word.StartsWith("--", StringComparison.Ordinal))
            {
                assignment = word.Substring(2);
            }

            int eq = assignment?.IndexOf('=', StringComparison.Ordinal) ?? -1;
            if (assignment is not null && eq > 0)
            {
                yield return (assignment.Substring(0, eq).Replace('-', '_'), assignment.Substring(eq + 1));
            }
        }
    }

    private static List<string> SplitOptions(string options)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        for (int i = 0; i < options.Length; i++)
        {
            char c = options[i];
            if (c == '\\' && i + 1 < options.Length)
            {
                current.Append(options[++i]);
            }
            else if (char.IsWhiteSpace(c))
            {
                if (current.Length > 0)
                {
                    words.Add(current.ToString());
                    current.Clear();
                }
            }
            else
            {
                current.Append(c);
            }
        }

        if (current.Length > 0)
        {
            words.Add(current.ToString());
        }

        return words;
    }

    private static bool IsSettingName(string name)
    {
        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_' || c == '.'))
            {
                return false;
            }
        }

        return name.Length > 0;
    }
}
