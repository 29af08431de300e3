using System.Collections.Concurrent;
using FastPool.Protocol;
using FastPool.Proxy.Topology;
using FastPool.Proxy.Transport;
using Microsoft.Extensions.Logging;

namespace FastPool.Proxy.Pooling;

/// <summary>
/// The server connections of one (database, user) pair on one node. Idle connections sit in a lock-free
/// queue and the counters are Interlocked, so acquire and release take no lock while a connection is free;
/// clients that find the pool exhausted wait in FIFO order under a lock (the slow path only).
/// </summary>
internal sealed partial class ServerPool
{
    private readonly IdleServers _idle;
    private readonly Queue<Waiter> _waiters = new();
    private readonly Lock _waitLock = new();
    private readonly LimitCounter _dbLimit;
    private readonly LimitCounter _userLimit;
    private readonly PoolManager _manager;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private int _total;
    private int _waiterCount;
    private long _generation;
    private ServerException? _lastLoginError;
    private long _lastLoginErrorTicks;
    private volatile bool _closed;

    /// <summary>How this pool's server connections move bytes.</summary>
    public ConnectionTransport Transport => _manager.Transport;

    /// <summary>The pools' shared state, for the login: the config snapshot and learned secrets.</summary>
    internal PoolManager Manager => _manager;

    /// <summary>server_tls_* of the running configuration; new server connections use it.</summary>
    public Configuration.TlsSettings ServerTls => _manager.Config.ServerTls;

    public ServerPool(PoolManager manager, PoolKey key, Node node, PoolSettings settings, LimitCounter dbLimit, LimitCounter userLimit, TimeProvider time, ILogger logger)
    {
        _manager = manager;
        _idle = new IdleServers(manager.Transport.LoopCount);
        Key = key;
        Node = node;
        Settings = settings;
        _dbLimit = dbLimit;
        _userLimit = userLimit;
        _time = time;
        _logger = logger;
    }

    public PoolKey Key { get; }

    public Node Node { get; }

    public PoolSettings Settings { get; private set; }

    public int TotalCount => Volatile.Read(ref _total);

    public int IdleCount => _idle.Count;

    public int WaitingCount => Volatile.Read(ref _waiterCount);

    public long Generation => Interlocked.Read(ref _generation);

    /// <summary>
    /// The ParameterStatus set of the last server that logged in, so a client can finish its login before it
    /// holds a server (as PgBouncer does): clients beyond the pool size log in at once and wait at their first query.
    /// </summary>
    public KeyValuePair<string, string>[]? WelcomeParameters { get; private set; }

    /// <summary>Completes when <see cref="WelcomeParameters"/> is first known, so clients queued for that can log in.</summary>
    public Task WelcomeKnown => _welcomeKnown.Task;

    /// <summary>
    /// Whether a plain BEGIN on this pool's servers is READ COMMITTED (default_transaction_isolation as the server,
    /// role and database set it), learned once by routing (ClientSession.Split.cs); null until then.
    /// </summary>
    public bool? DefaultReadCommitted { get; set; }

    private readonly TaskCompletionSource _welcomeKnown = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal LimitCounter DbLimit => _dbLimit;

    internal LimitCounter UserLimit => _userLimit;

    /// <summary>Gets a logged-in, idle server connection, waiting in line when the pool is full.</summary>
    public ValueTask<ServerConnection> AcquireAsync(CancellationToken ct)
    {
        if (TryTakeIdle(out var server) && !NeedsCheck(server))
        {
            return ValueTask.FromResult(server);
        }

        return AcquireSlowAsync(server, ct);
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ServerConnection> AcquireSlowAsync(ServerConnection? candidate, CancellationToken ct)
    {
        while (true)
        {
            if (candidate is not null)
            {
                if (!NeedsCheck(candidate) || await CheckAsync(candidate, ct).ConfigureAwait(false))
                {
                    return candidate;
                }

                candidate = null;
                if (TryTakeIdle(out candidate))
                {
                    continue;
                }
            }

            if (_closed)
            {
                throw new ServerException(SqlState.AdminShutdown, "pooler is shutting down");
            }

            if (TryReserveSlot(allowReserve: false))
            {
                return await OpenReservedAsync(ct).ConfigureAwait(false);
            }

            var handed = await WaitAsync(ct).ConfigureAwait(false);
            if (handed is null)
            {
                if (_closed)
                {
                    throw new ServerException(SqlState.AdminShutdown, "pooler is shutting down");
                }

                // A slot, not a connection, was handed over: open it ourselves.
                return await OpenReservedAsync(ct).ConfigureAwait(false);
            }

            candidate = handed;
        }
    }

    /// <summary>Returns a connection after use. Anything not known to be clean and current is closed instead.</summary>
    public void Release(ServerConnection server)
    {
        if (server.TryDeferRelease())
        {
            // A client's cancel is on its way to this connection: it comes back when that is delivered.
            return;
        }

        server.UncountOutstanding();
        long now = _time.GetTimestamp();
        if (!server.IsClean || server.TransactionStatus != TransactionStatus.Idle || server.Generation != Generation || _closed || Expired(server, now))
        {
            Close(server);
            return;
        }

        server.LastUsedTicks = now;
        if (Volatile.Read(ref _waiterCount) > 0 && TryHandToWaiter(server))
        {
            return;
        }

        _idle.Add(server);
        if (Volatile.Read(ref _waiterCount) > 0)
        {
            DispatchIdle();
        }
    }

    /// <summary>Closes a connection that must not be reused and frees its slot for a waiting client.</summary>
    public void Close(ServerConnection server)
    {
        server.UncountOutstanding();
        server.Broken = true;
        _ = server.TerminateAndCloseAsync();
        ReleaseSlot();
    }

    /// <summary>Retires every connection of the current generation (reload, failover, RECONNECT).</summary>
    public void BumpGeneration() => Interlocked.Increment(ref _generation);

    private bool TryTakeIdle(out ServerConnection server)
    {
        long now = 0;
        while (_idle.TryTake(out server!))
        {
            if (now == 0)
            {
                now = _time.GetTimestamp();
            }

            if (IsReusable(server, now))
            {
                return true;
            }

            Close(server);
        }

        server = null!;
        return false;
    }

    private bool IsReusable(ServerConnection server, long now) =>
        !server.Broken && server.Generation == Generation && !Expired(server, now) && !server.Connection.HasUnexpectedInput();

    /// <summary>Closes one idle connection to make room for a pool that shares a db/user limit (PgBouncer evicts the same way).</summary>
    internal bool TryEvictIdle()
    {
        if (!_idle.TryTakeOldest(out var server))
        {
            return false;
        }

        Close(server);
        return true;
    }

    private bool Expired(ServerConnection server, long now) =>
        Settings.Lifetime > TimeSpan.Zero && _time.GetElapsedTime(server.CreatedTicks, now) > Settings.Lifetime;

    private bool NeedsCheck(ServerConnection server) =>
        Settings.CheckQuery.Length > 0 && _time.GetElapsedTime(server.LastUsedTicks) >= Settings.CheckDelay;

    private async ValueTask<bool> CheckAsync(ServerConnection server, CancellationToken ct)
    {
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(Settings.ConnectTimeout > TimeSpan.Zero ? Settings.ConnectTimeout : TimeSpan.FromSeconds(15));
            var error = await MessageIo.RunQueryAsync(server, new MessageBuilder(), Settings.CheckQuery, cts.Token).ConfigureAwait(false);
            if (error is null && server.TransactionStatus == TransactionStatus.Idle && !server.Broken)
            {
                server.LastUsedTicks = _time.GetTimestamp();
                return true;
            }

            Log.ServerCheckFailed(_logger, server.ToString(), error?.Message ?? "unexpected state");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client gave up mid-check: the server's state is unknown, so it is closed, never leaked.
            Close(server);
            throw;
        }
        catch (Exception ex)
        {
            Log.ServerCheckFailed(_logger, server.ToString(), ServerConnector.Describe(ex));
        }

        Close(server);
        return false;
    }

    private bool TryReserveSlot(bool allowReserve)
    {
        var settings = Settings;
        int limit = settings.Size + (allowReserve ? settings.ReserveSize : 0);
        while (true)
        {
            int current = Volatile.Read(ref _total);
            if (current >= limit)
            {
                return false;
            }

            if (!_dbLimit.TryAcquire())
            {
                return false;
            }

            if (!_userLimit.TryAcquire())
            {
                _dbLimit.Release();
                return false;
            }

            if (Interlocked.CompareExchange(ref _total, current + 1, current) == current)
            {
                return true;
            }

            _dbLimit.Release();
            _userLimit.Release();
        }
    }

    /// <summary>Frees a slot and offers it to whoever waits for one, here or in a pool that shares a limit.</summary>
    private void ReleaseSlot()
    {
        ReleaseSlotQuietly();
        TryWakeWithSlot();
        _manager.OnSlotFreed(this);
    }

    private void ReleaseSlotQuietly()
    {
        Interlocked.Decrement(ref _total);
        _dbLimit.Release();
        _userLimit.Release();
    }

    /// <summary>When a client waits and a slot is free (or just freed), hands the slot to the first waiter.</summary>
    internal void TryWakeWithSlot()
    {
        if (Volatile.Read(ref _waiterCount) == 0 || !TryReserveSlot(allowReserve: false))
        {
            return;
        }

        if (!TryHandToWaiter(null))
        {
            ReleaseSlotQuietly();
        }
    }

    private async ValueTask<ServerConnection> OpenReservedAsync(CancellationToken ct)
    {
        var settings = Settings;
        var lastError = Volatile.Read(ref _lastLoginError);
        if (lastError is not null && _time.GetElapsedTime(Interlocked.Read(ref _lastLoginErrorTicks)) < settings.LoginRetry)
        {
            // server_login_retry: a server that just refused us is not asked again until the delay passes.
            ReleaseSlot();
            throw lastError;
        }

        try
        {
            // A login under way is finished even if the client stops waiting (server_connect_timeout still bounds
            // it): the new connection then goes to the pool for the next client instead of being thrown away.
            var server = await ServerConnector.OpenAsync(this, Node, Generation, _time.GetTimestamp(), settings.ConnectTimeout, CancellationToken.None).ConfigureAwait(false);
            if (!string.IsNullOrEmpty(settings.ConnectQuery))
            {
                var error = await MessageIo.RunQueryAsync(server, new MessageBuilder(), settings.ConnectQuery, CancellationToken.None).ConfigureAwait(false);
                if (error is not null)
                {
                    Log.ConnectQueryFailed(_logger, Key.ToString(), error.Message);
                }
            }

            Volatile.Write(ref _lastLoginError, null);
            WelcomeParameters = [.. server.Parameters];
            _welcomeKnown.TrySetResult();
            Log.ServerConnected(_logger, server.ToString(), Key.ToString(), server.Security);
            if (ct.IsCancellationRequested)
            {
                Release(server);
                ct.ThrowIfCancellationRequested();
            }

            return server;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            var error = ex as ServerException ?? new ServerException(SqlState.ConnectionFailure, ServerConnector.Describe(ex), inner: ex);
            Log.ServerLoginFailed(_logger, Key.ToString(), Node.Endpoint.Host, Node.Endpoint.Port, error.Message);
            if (!ct.IsCancellationRequested)
            {
                Interlocked.Exchange(ref _lastLoginErrorTicks, _time.GetTimestamp());
                Volatile.Write(ref _lastLoginError, error);
            }

            ReleaseSlot();
            throw error;
        }
    }
}
