using System.Net;
using System.Net.Sockets;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Connections;
using FastPool.Proxy.Transport;
using Microsoft.Extensions.Logging;

namespace FastPool.Proxy;

public enum ShutdownMode
{
    /// <summary>Close every client and server connection now.</summary>
    Immediate,

    /// <summary>
    /// PgBouncer's WAIT_FOR_CLIENTS (SIGTERM): stop accepting; wait for clients to leave (bounded by
    /// shutdown_wait_timeout when set); whoever is left then gets 57P01.
    /// </summary>
    Safe,

    /// <summary>
    /// PgBouncer's WAIT_FOR_SERVERS (SIGINT): stop accepting and pause; clients asking for a server get 57P01 at once;
    /// once no server is in use any more (transactions under way have finished; in session mode, clients have
    /// left), every client left gets 57P01. Bounded by shutdown_wait_timeout when set.
    /// </summary>
    WaitForServers,
}

/// <summary>
/// A running proxy: listeners, accept loops, the connection pipeline and the periodic timers
/// (pool maintenance every second, the stats line every stats_period).
/// </summary>
public sealed class ProxyServer : IAsyncDisposable
{
    // How long a process handing its port over (so_reuseport) still accepts: the connections already queued on
    // its listener, or half open when the steering started, need about one client round trip to arrive.
    private static readonly TimeSpan s_handOverGrace = TimeSpan.FromSeconds(1);

    // How long clients told 57P01 get to go before they are aborted, and how often the drain looks at who is left.
    private static readonly TimeSpan s_stopGrace = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan s_drainPoll = TimeSpan.FromMilliseconds(50);

    private readonly ProxyRuntime _runtime;
    private readonly ClientDelegate _pipeline;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _acceptLoops = [];
    private readonly HashSet<ClientContext> _clients = [];
    private readonly Lock _clientsLock = new();
    private readonly TaskCompletionSource<ShutdownMode> _shutdownRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private List<Socket> _listeners = [];

    // The unix socket files this process created, with their time: a successor started with so_reuseport
    // replaces the file, and this process must not delete the successor's file when it closes.
    private readonly Dictionary<string, DateTime> _socketFiles = new(StringComparer.Ordinal);
    private ITimer? _maintenance;
    private ITimer? _statsTimer;
    private ITimer? _nodeChecks;
    private Metrics.MetricsServer? _metrics;
    private TimeSpan _statsPeriod;
    private int _stopped;
    private Task? _stopTask;

    public ProxyServer(ProxyConfig config, ILoggerFactory loggerFactory, TimeProvider? time = null)
    {
        _runtime = new ProxyRuntime(config, time ?? Transport.LoopClock.Instance, loggerFactory);
        _pipeline = ConnectionPipeline.Build();
        _runtime.ShutdownRequested = OnShutdownCommand;
        _runtime.ConfigApplied = c =>
        {
            RetimeStats(c.StatsPeriod);
            _runtime.Health.Retime(c.FastPool.Failover.HealthCheckPeriod);
        };
    }

    /// <summary>Completes, with the mode asked for, when an admin ran SHUTDOWN (the server is then already stopping).</summary>
    public Task<ShutdownMode> ShutdownRequested => _shutdownRequested.Task;

    /// <summary>The configuration in effect right now (it changes with a reload or an admin SET).</summary>
    public ProxyConfig Config => _runtime.Config;

    /// <summary>The result cache's counters (SHOW POOL_CACHE); all zero while memory_cache_enabled is off.</summary>
    public Cache.CacheStats CacheStats => _runtime.Cache?.Stats ?? default;

    /// <summary>The TCP port actually bound (useful with listen_port = 0 in tests).</summary>
    public int Port { get; private set; }

    public IReadOnlyList<EndPoint> EndPoints { get; private set; } = [];

    /// <summary>Where /metrics, /healthz and the status page are served (metrics_listen), or null.</summary>
    public IPEndPoint? MetricsEndPoint => _metrics?.EndPoint;

    public int ClientCount => _runtime.Stats.Clients;

    /// <summary>Clients pinned to their server in transaction/statement pooling (LISTEN, temp tables, ...).</summary>
    public int PinnedClientCount => _runtime.Stats.PinnedClients;

    /// <summary>Server connections open right now, over all pools.</summary>
    public int ServerCount => _runtime.Pools.AllPools.Sum(p => p.TotalCount);

    public void Start()
    {
        var config = _runtime.Config;
        _listeners = Listener.Bind(config);
        Port = Listener.PortOf(_listeners);
        if (Port == 0)
        {
            Port = config.ListenPort;
        }

        EndPoints = _listeners.Select(s => s.LocalEndPoint!).ToList();
        foreach (var path in _listeners.Select(s => (s.LocalEndPoint as UnixDomainSocketEndPoint)?.ToString()).OfType<string>())
        {
            _socketFiles[path] = File.GetLastWriteTimeUtc(path);
        }

        if (config.FastPool.MetricsListen is { } metricsAt)
        {
            try
            {
                _metrics = Metrics.MetricsServer.Start(_runtime, metricsAt);
            }
            catch
            {
                foreach (var socket in _listeners)
                {
                    CloseListener(socket);
                }

                throw;
            }

            Log.MetricsListening(_runtime.Logger, Describe(_metrics.EndPoint));
        }

        Log.TransportChosen(_runtime.Logger, _runtime.Transport.Name, _runtime.Transport.Reason);
        long expectedFiles = Transport.OpenFileLimit.Expected(_runtime.Config, _runtime.Transport.DescriptorsPerConnection);
        var (softFiles, hardFiles) = Transport.OpenFileLimit.Raise(expectedFiles);
        Log.FileLimit(_runtime.Logger, softFiles, hardFiles, _runtime.Config.MaxClientConn, expectedFiles);
        if (softFiles < (ulong)expectedFiles)
        {
            Log.FileLimitLow(_runtime.Logger, softFiles, expectedFiles);
        }

        foreach (var socket in _listeners)
        {
            Log.Listening(_runtime.Logger, Describe(socket.LocalEndPoint));
            _acceptLoops.Add(AcceptLoopAsync(socket));
        }

        var trim = new MemoryTrim(_runtime.Time);
        _maintenance = _runtime.Time.CreateTimer(_ =>
        {
            _runtime.Pools.Maintain();
            trim.MaybeTrim();
        }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        _statsTimer = _runtime.Time.CreateTimer(_ => OnStatsPeriod(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        RetimeStats(config.StatsPeriod);

        // Node roles and replication delay: a first round at once, then every sr_check_period.
        var srPeriod = config.FastPool.SrCheckPeriod;
        if (srPeriod > TimeSpan.Zero)
        {
            _nodeChecks = _runtime.Time.CreateTimer(_ => _ = _runtime.NodeMonitor.CheckAllAsync(_stopping.Token), null, TimeSpan.Zero, srPeriod);
        }

        _runtime.Health.Start();

        // Fill min_pool_size without waiting for the first tick.
        _runtime.Pools.Maintain();
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex)
            {
                // Out of file descriptors and the like: log, breathe, keep accepting; never bring the proxy down.
                Log.AcceptFailed(_runtime.Logger, Describe(listener.LocalEndPoint), ex.Message);
                await Task.Delay(50).ConfigureAwait(false);
                continue;
            }

            _ = HandleClientAsync(socket);
        }
    }

    /// <summary>
    /// Runs one client's session. Called without a thread hop from the accept loop: the session runs only until
    /// its first read parks (the startup packet has rarely arrived yet), then the accept loop goes on.
    /// </summary>
    private async Task HandleClientAsync(Socket socket)
    {
        Connection connection;
        try
        {
            connection = _runtime.Transport.Accept(socket);
        }
        catch (Exception ex)
        {
            Log.AcceptFailed(_runtime.Logger, "client", ex.Message);
            socket.Dispose();
            return;
        }

        var context = new ClientContext(connection, _runtime);
        lock (_clientsLock)
        {
            _clients.Add(context);
        }

        _runtime.Clients[context.Id] = context;
        try
        {
            await _pipeline(context).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // A bug in one session must never take the proxy down: log it, drop that client.
            Log.Unexpected(_runtime.Logger, context.Id, ex.Message, ex);
            context.CloseReason = "internal error";
        }
        finally
        {
            lock (_clientsLock)
            {
                _clients.Remove(context);
            }

            _runtime.Clients.TryRemove(context.Id, out _);
            if (context.HoldsClientSlot)
            {
                _runtime.Stats.ClientClosed();
            }

            if (context.Startup is not null && _runtime.Config.LogDisconnections)
            {
                Log.ClientClosed(_runtime.Logger, context.Id, context.DatabaseName, context.User, connection.RemoteEndPoint, context.KillReason ?? context.CloseReason,
                    _runtime.Time.GetElapsedTime(context.StartedTicks).TotalSeconds);
            }

            // After a TLS upgrade the first connection no longer owns the socket; disposing it only frees its buffers.
            if (context.Connection != connection)
            {
                await context.Connection.DisposeAsync().ConfigureAwait(false);
            }

            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Reads the config file again and applies it (SIGHUP); a broken file is rejected and logged.</summary>
    public ReloadResult Reload() => _runtime.Reload();

    /// <summary>Runs at the start of every reload, SIGHUP or the console's RELOAD (the host reopens its log file there).</summary>
    public Action? BeforeReload
    {
        set => _runtime.BeforeReload = value;
    }

    /// <summary>SIGUSR1, as PgBouncer: PAUSE every database (transactions under way finish, new ones wait).</summary>
    public void PauseAll()
    {
        bool paused = !_runtime.ShuttingDown && _runtime.Control.Pause(null);
        Log.SignalControl(_runtime.Logger, "SIGUSR1", paused ? "pausing every database" : "ignored: already paused or shutting down");
    }

    /// <summary>SIGUSR2, as PgBouncer: RESUME what PAUSE or SUSPEND held.</summary>
    public void ResumeAll()
    {
        bool resumed = !_runtime.ShuttingDown && _runtime.Control.Resume(null);
        Log.SignalControl(_runtime.Logger, "SIGUSR2", resumed ? "resuming" : "ignored: nothing paused or shutting down");
    }

    private void RetimeStats(TimeSpan period)
    {
        lock (_clientsLock)
        {
            if (period == _statsPeriod || _statsTimer is null)
            {
                return;
            }

            _statsPeriod = period;
            var due = period > TimeSpan.Zero ? period : Timeout.InfiniteTimeSpan;
            _statsTimer.Change(due, due);
        }
    }

    /// <summary>Every stats_period: the averages SHOW STATS reports, and the log line when log_stats is on.</summary>
    private void OnStatsPeriod()
    {
        var period = _statsPeriod;
        _runtime.Stats.Sample(period);
        if (_runtime.Config.LogStats)
        {
            LogStats();
        }
    }

    private void OnShutdownCommand(ShutdownMode mode)
    {
        // Stop first: once SHUTDOWN WAIT_FOR_SERVERS is acknowledged, no new transaction may start.
        _ = StopAsync(mode);
        _shutdownRequested.TrySetResult(mode);
    }

    /// <summary>PgBouncer's stats line, from the averages <see cref="ProxyStats.Sample"/> just took for the period.</summary>
    private void LogStats()
    {
        var a = _runtime.Stats.CombinedAverages();
        Log.Stats(_runtime.Logger, a.Transactions, a.Queries, a.BytesIn, a.BytesOut, a.TransactionMicroseconds, a.QueryMicroseconds, a.WaitMicroseconds);
    }

    /// <summary>Stops accepting, then ends sessions as the mode says; returns when everything is closed.</summary>
    public Task StopAsync(ShutdownMode mode, TimeSpan? waitTimeout = null)
    {
        lock (_clientsLock)
        {
            if (Interlocked.Exchange(ref _stopped, 1) == 0)
            {
                if (mode == ShutdownMode.WaitForServers)
                {
                    // Before this returns, so no transaction starts after the shutdown was asked for: the pause holds
                    // new ones, and the wait for servers turns them away.
                    _runtime.Control.Pause(null);
                }

                _stopTask = StopCoreAsync(mode, waitTimeout);
                return _stopTask;
            }
        }

        // Already stopping (a signal, then SHUTDOWN, then dispose): join the stop under way, sooner if asked to.
        if (mode == ShutdownMode.Immediate)
        {
            AbortClients();
        }

        return _stopTask ?? Task.CompletedTask;
    }

    private async Task StopCoreAsync(ShutdownMode mode, TimeSpan? waitTimeout)
    {
        await Task.Yield();

        // First, so /healthz turns 503 while clients drain (load balancers stop sending new ones).
        _runtime.MarkShuttingDown();
        Log.ShuttingDown(_runtime.Logger, mode switch
        {
            ShutdownMode.Safe => "safe (waiting for clients to finish)",
            ShutdownMode.WaitForServers => "safe (waiting for servers to be released)",
            _ => "immediate",
        });
        if (mode != ShutdownMode.Immediate && _runtime.Config.SoReuseport)
        {
            await HandOverListenersAsync().ConfigureAwait(false);
        }

        _stopping.Cancel();
        foreach (var listener in _listeners)
        {
            CloseListener(listener);
        }

        if (mode != ShutdownMode.Immediate)
        {
            using var waitEnded = new CancellationTokenSource();
            var wait = mode == ShutdownMode.Safe ? WhenClientsGoneAsync(waitEnded.Token) : WhenServersReleasedAsync(waitEnded.Token);
            var limit = waitTimeout ?? (_runtime.Config.ShutdownWaitTimeout > TimeSpan.Zero ? _runtime.Config.ShutdownWaitTimeout : Timeout.InfiniteTimeSpan);
            bool timedOut = await Task.WhenAny(wait, Task.Delay(limit)).ConfigureAwait(false) != wait;
            await waitEnded.CancelAsync().ConfigureAwait(false);
            await StopRemainingClientsAsync(timedOut).ConfigureAwait(false);
        }

        AbortClients();
        _runtime.Pools.Shutdown();
        await _runtime.Sessions.WhenEmptyAsync().WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        _runtime.Pools.Shutdown();
        if (_maintenance is not null)
        {
            await _maintenance.DisposeAsync().ConfigureAwait(false);
        }

        if (_statsTimer is not null)
        {
            await _statsTimer.DisposeAsync().ConfigureAwait(false);
        }

        if (_nodeChecks is not null)
        {
            await _nodeChecks.DisposeAsync().ConfigureAwait(false);
        }

        if (_metrics is not null)
        {
            await _metrics.DisposeAsync().ConfigureAwait(false);
        }

        await _runtime.Health.DisposeAsync().ConfigureAwait(false);
        await _runtime.StopCacheListenerAsync().ConfigureAwait(false);

        // Last: pooled servers closed above may still have had reads parked on the loops.
        _runtime.Transport.Dispose();
    }

    /// <summary>
    /// so_reuseport: before the listeners close, new connections are steered to the FastPool that shares the port,
    /// and the accept loops go on for <see cref="s_handOverGrace"/> to take what was already queued or half
    /// open here; closing a listener would reset those connections.
    /// </summary>
    private async Task HandOverListenersAsync()
    {
        bool steered = false;
        foreach (var listener in _listeners)
        {
            if (listener.LocalEndPoint is IPEndPoint)
            {
                steered |= ReusePort.SteerToSuccessor(listener);
            }
        }

        Log.HandingOver(_runtime.Logger, steered ? "new connections go to the next process on the port" : "the kernel refused to steer connections", s_handOverGrace.TotalSeconds);
        await Task.Delay(s_handOverGrace, _runtime.Time).ConfigureAwait(false);
    }

    /// <summary>
    /// A safe shutdown waits for every client to leave: those with a session, and those still logging in (the
    /// listeners are closed, so no new ones come, and a client half logged in must not be cut off because the
    /// sessions happened to end first). Admin console clients are not waited for: a monitoring connection would
    /// hold the shutdown forever.
    /// </summary>
    private async Task WhenClientsGoneAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            await _runtime.Sessions.WhenEmptyAsync().WaitAsync(stop).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            lock (_clientsLock)
            {
                if (_clients.All(c => c.IsConsole && c.LoggedIn))
                {
                    return;
                }
            }

            await Task.Delay(s_drainPoll).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// WAIT_FOR_SERVERS: completes once no session holds a server. Meanwhile every client that asks for a server is
    /// told 57P01 at once (PgBouncer disconnects such clients eagerly), so no new transaction starts; a transaction
    /// under way finishes and its server goes back to the pool, and a session-mode client keeps its server until it
    /// leaves.
    /// </summary>
    private async Task WhenServersReleasedAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            List<ClientContext> clients;
            lock (_clientsLock)
            {
                clients = [.. _clients];
            }

            bool inUse = false;
            foreach (var client in clients)
            {
                if (client.Session is not { } session)
                {
                    continue;
                }

                if (session.WaitingSinceTicks != 0)
                {
                    session.StopForShutdown();
                }
                else
                {
                    inUse |= session.CurrentServer is not null;
                }
            }

            if (!inUse)
            {
                return;
            }

            await Task.Delay(s_drainPoll).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The wait for clients ended: each client still connected is told 57P01 (as PostgreSQL's own shutdown tells
    /// its clients) and closed, whatever it is doing: a session through its pump (so the error never lands in the
    /// middle of a server message), a client still logging in or on the admin console where it waits (<see
    /// cref="ProxyRuntime.DrainOver"/>). Whatever has not ended shortly after is aborted by the caller.
    /// </summary>
    private async Task StopRemainingClientsAsync(bool timedOut)
    {
        List<ClientContext> clients;
        lock (_clientsLock)
        {
            clients = [.. _clients];
        }

        if (clients.Count == 0)
        {
            return;
        }

        if (timedOut)
        {
            Log.ShutdownTimedOut(_runtime.Logger, clients.Count);
        }

        _runtime.EndDrain();
        foreach (var client in clients)
        {
            client.Session?.StopForShutdown();
        }

        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.Elapsed < s_stopGrace)
        {
            lock (_clientsLock)
            {
                if (_clients.Count == 0)
                {
                    return;
                }
            }

            await Task.Delay(s_drainPoll).ConfigureAwait(false);
        }
    }

    /// <summary>Turns a pending safe shutdown into an immediate one (a second signal).</summary>
    public void AbortClients()
    {
        List<ClientContext> clients;
        lock (_clientsLock)
        {
            clients = [.. _clients];
        }

        foreach (var c in clients)
        {
            c.Connection.Abort();
        }
    }

    private void CloseListener(Socket listener)
    {
        var path = (listener.LocalEndPoint as UnixDomainSocketEndPoint)?.ToString();
        listener.Dispose();
        if (!string.IsNullOrEmpty(path) && _socketFiles.TryGetValue(path, out var created) && File.GetLastWriteTimeUtc(path) == created)
        {
            try
            {
                File.Delete(path);
            }
            catch (IOException)
            {
            }
        }
    }

    private static string Describe(EndPoint? endpoint) => endpoint switch
    {
        UnixDomainSocketEndPoint u => "unix:" + u,
        null => "?",
        _ => endpoint.ToString() ?? "?",
    };

    public async ValueTask DisposeAsync()
    {
        await StopAsync(ShutdownMode.Immediate).ConfigureAwait(false);
        _stopping.Dispose();
    }
}
