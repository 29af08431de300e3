using System.Collections.Concurrent;
using FastPool.Protocol.Scram;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Topology;
using FastPool.Proxy.Transport;
using Microsoft.Extensions.Logging;

namespace FastPool.Proxy.Pooling;

/// <summary>
/// All pools, keyed by (database entry, client user, node), plus the counters shared between pools:
/// max_db_connections per database entry and max_user_connections per user.
/// </summary>
internal sealed class PoolManager
{
    private readonly ConcurrentDictionary<(string Database, string User, int Node), ServerPool> _pools = new();
    private readonly ConcurrentDictionary<(string Database, string User, int Node), ServerPool> _authQueryPools = new();
    private readonly ConcurrentDictionary<string, LimitCounter> _dbLimits = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, LimitCounter> _userLimits = new(StringComparer.Ordinal);
    private readonly List<ServerPool> _retired = [];
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private volatile ProxyConfig _config;

    public PoolManager(ProxyConfig config, TimeProvider time, ILogger logger, ConnectionTransport transport)
    {
        Transport = transport;
        _config = config;
        _time = time;
        _logger = logger;
    }

    public ProxyConfig Config => _config;

    public ConnectionTransport Transport { get; }

    /// <summary>md5 secrets and SCRAM keys learned from clients and auth_query, for server logins without a password.</summary>
    public LoginSecrets Secrets { get; } = new();

    /// <summary>The pools new clients are served from.</summary>
    public IEnumerable<ServerPool> Pools => _pools.Values;

    /// <summary>Current pools, auth_query's pools, and pools a reload retired that still have connections to drain.</summary>
    public IEnumerable<ServerPool> AllPools => _pools.Values.Concat(_authQueryPools.Values).Concat(RetiredSnapshot());

    /// <summary>How many connections auth_query keeps per (database, auth_user, node): lookups are short, and a burst of
    /// new users then waits its turn instead of opening a server connection each.</summary>
    public const int AuthQueryPoolSize = 2;

    /// <summary>
    /// The pool auth_query's lookups borrow their connection from, logged in as <paramref name="login"/> (auth_user
    /// and auth_dbname already applied). Like PgBouncer's auth_user pool, it keeps its connections between lookups
    /// (closed after server_idle_timeout like any), so a cache miss costs one query, not a server login. Apart from
    /// the client pools: its key's user is auth_user as a server login, which a client pool of the same name (with a
    /// forced user= or another dbname) need not be; it is not counted against max_db/user_connections.
    /// </summary>
    public ServerPool GetAuthQueryPool(DatabaseConfig login, string clientDatabase, Node node)
    {
        var key = (PoolKey.DatabaseKeyOf(login, clientDatabase), login.User!, node.Id);
        if (_authQueryPools.TryGetValue(key, out var pool))
        {
            return pool;
        }

        return _authQueryPools.GetOrAdd(key, _ =>
        {
            var config = _config;
            var settings = PoolSettings.From(config, login, null) with
            {
                Mode = PoolMode.Session,
                Size = AuthQueryPoolSize,
                MinSize = 0,
                ReserveSize = 0,
                ConnectQuery = null,
            };
            var poolKey = new PoolKey(login, clientDatabase, login.User!, ServerPassword(config, login, login.User!));
            return new ServerPool(this, poolKey, node, settings, new LimitCounter(0), new LimitCounter(0), _time, _logger);
        });
    }

    public ServerPool GetPool(DatabaseConfig database, string clientDatabase, string clientUser, Node node)
    {
        var key = (PoolKey.DatabaseKeyOf(database, clientDatabase), clientUser, node.Id);
        if (_pools.TryGetValue(key, out var pool))
        {
            return pool;
        }

        return _pools.GetOrAdd(key, _ => CreatePool(database, clientDatabase, clientUser, node));
    }

    private ServerPool CreatePool(DatabaseConfig database, string clientDatabase, string clientUser, Node node)
    {
        var config = _config;

        // A client that logged in before a reload may ask for its first server after it: the pool it gets is
        // built from the entry as it is now, not as it was at its login.
        if (config.FindDatabase(clientDatabase) is { } current && current.Name == database.Name && node.Id < current.Nodes.Count
            && current.Nodes[node.Id] == node.Endpoint)
        {
            database = current;
        }

        config.Users.TryGetValue(clientUser, out var user);
        var key = new PoolKey(database, clientDatabase, clientUser, ServerPassword(config, database, clientUser));
        var settings = PoolSettings.From(config, database, user);
        var dbLimit = _dbLimits.GetOrAdd(key.DatabaseKey, _ => new LimitCounter(database.MaxDbConnections ?? config.MaxDbConnections));
        var userLimit = _userLimits.GetOrAdd(clientUser, _ => new LimitCounter(user?.MaxUserConnections ?? config.MaxUserConnections));
        return new ServerPool(this, key, node, settings, dbLimit, userLimit, _time, _logger);
    }

    /// <summary>
    /// Only a plain-text auth_file secret can answer a server's password, md5 or SCRAM challenge; md5/SCRAM secrets are
    /// for client auth. An md5 secret is exactly "md5" + 32 hex digits: a password that merely starts with "md5" is plain.
    /// </summary>
    internal static string? ServerPassword(ProxyConfig config, DatabaseConfig database, string clientUser)
    {
        config.AuthFileUsers.TryGetValue(database.User ?? clientUser, out var secret);
        // An empty secret names a user (trust lets them in) without giving a password.
        return !string.IsNullOrEmpty(secret) && !IsMd5Secret(secret) && !ScramSecret.LooksLikeSecret(secret)
            ? secret
            : null;
    }

    /// <summary>
    /// Applies a new config snapshot to the running pools. A pool whose servers would log in the same way takes
    /// the new sizes, timeouts and limits in place; a pool whose entry changed what its servers are (or lost its
    /// entry) is retired: new clients get a fresh pool, and the old one drains without disconnecting anybody.
    /// </summary>
    public void ApplyConfig(ProxyConfig config)
    {
        _config = config;

        // auth_query's pools log in with auth_user, auth_dbname and a password that any reload may change: they are
        // all retired (drained like client pools), and the next lookup opens a fresh one.
        foreach (var (key, pool) in _authQueryPools)
        {
            if (_authQueryPools.TryRemove(new KeyValuePair<(string, string, int), ServerPool>(key, pool)))
            {
                lock (_retired)
                {
                    _retired.Add(pool);
                }

                pool.Retire();
            }
        }

        foreach (var (key, pool) in _pools)
        {
            string clientDatabase = key.Database.StartsWith('*') ? key.Database.Substring(1) : key.Database;
            var entry = config.FindDatabase(clientDatabase);
            bool fallback = pool.Key.Database.Name == "*";
            if (entry is null || (entry.Name == "*") != fallback || !SameServers(pool, entry, config))
            {
                if (_pools.TryRemove(new KeyValuePair<(string, string, int), ServerPool>(key, pool)))
                {
                    lock (_retired)
                    {
                        _retired.Add(pool);
                    }

                    pool.Retire();
                    Log.PoolRetired(_logger, pool.Key.ToString());
                }

                continue;
            }

            config.Users.TryGetValue(key.User, out var user);
            pool.DbLimit.Limit = entry.MaxDbConnections ?? config.MaxDbConnections;
            pool.UserLimit.Limit = user?.MaxUserConnections ?? config.MaxUserConnections;
            pool.UpdateSettings(PoolSettings.From(config, entry, user));
        }
    }

    /// <summary>Whether a pool's servers, opened under its old entry, are what the new entry would open.</summary>
    private static bool SameServers(ServerPool pool, DatabaseConfig entry, ProxyConfig config)
    {
        var old = pool.Key.Database;
        int node = pool.Node.Id;
        return node < entry.Nodes.Count
            && entry.Nodes[node] == pool.Node.Endpoint
            && entry.DbName == old.DbName
            && entry.User == old.User
            && (entry.Password ?? ServerPassword(config, entry, pool.Key.ClientUser)) == pool.Key.Password
            && entry.ClientEncoding == old.ClientEncoding
            && entry.DateStyle == old.DateStyle
            && entry.TimeZone == old.TimeZone
            && entry.ApplicationName == old.ApplicationName
            && entry.ConnectQuery == old.ConnectQuery;
    }

    private ServerPool[] RetiredSnapshot()
    {
        lock (_retired)
        {
            return _retired.Count == 0 ? [] : [.. _retired];
        }
    }

    /// <summary>A slot freed in one pool may let a client waiting in another pool under the same db/user limit go ahead.</summary>
    internal void OnSlotFreed(ServerPool origin)
    {
        if (origin.DbLimit.Limit == 0 && origin.UserLimit.Limit == 0)
        {
            return;
        }

        foreach (var pool in _pools.Values)
        {
            if (pool != origin && pool.WaitingCount > 0 && (pool.DbLimit == origin.DbLimit || pool.UserLimit == origin.UserLimit))
            {
                pool.TryWakeWithSlot();
            }
        }
    }

    /// <summary>Closes one idle connection of another pool that shares a db/user limit with <paramref name="requester"/>.</summary>
    internal void EvictIdleFor(ServerPool requester)
    {
        bool dbFull = requester.DbLimit.Limit > 0 && requester.DbLimit.Count >= requester.DbLimit.Limit;
        bool userFull = requester.UserLimit.Limit > 0 && requester.UserLimit.Count >= requester.UserLimit.Limit;
        if (!dbFull && !userFull)
        {
            return;
        }

        foreach (var pool in _pools.Values)
        {
            if (pool != requester && ((dbFull && pool.DbLimit == requester.DbLimit) || (userFull && pool.UserLimit == requester.UserLimit)) && pool.TryEvictIdle())
            {
                return;
            }
        }
    }

    /// <summary>Set by the runtime: whether an admin paused a database, so upkeep does not refill its pools.</summary>
    public Func<string, bool>? IsPaused { get; set; }

    public void Maintain()
    {
        var paused = IsPaused;
        foreach (var pool in _pools.Values)
        {
            pool.Maintain(fill: paused is null || !paused(pool.Key.ClientDatabase));
        }

        foreach (var pool in _authQueryPools.Values)
        {
            pool.Maintain(fill: false);
        }

        foreach (var pool in RetiredSnapshot())
        {
            pool.Maintain(fill: false);
            if (pool.TotalCount == 0 && pool.WaitingCount == 0)
            {
                lock (_retired)
                {
                    _retired.Remove(pool);
                }
            }
        }
    }

    public void Shutdown()
    {
        foreach (var pool in AllPools)
        {
            pool.Shutdown();
        }
    }

    private static bool IsMd5Secret(string secret) =>
        secret.Length == 35 && secret.StartsWith("md5", StringComparison.Ordinal) && !secret.AsSpan(3).ContainsAnyExcept("0123456789abcdef");
}
