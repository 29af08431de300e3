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

    /// <summary>Current pools plus pools a reload retired that still have connections to drain.</summary>
    public IEnumerable<ServerPool> AllPools => _pools.Values.Concat(RetiredSnapshot());

    public ServerPool GetPool(DatabaseConfig database, string clientDatabase, string clientUser, Node node)
    {
        var key = (database.Name == "*" ? "*" + clientDatabase : database.Name, clientUser, node.Id);
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
        var dbLimit = _dbLimits.GetOrAdd(key.Database.Name == "*" ? "*" + clientDatabase : database.Name, _ => new LimitCounter(database.MaxDbConnections ?? config.MaxDbConnections));
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
        return secret is not null && !IsMd5Secret(secret) && !ScramSecret.LooksLikeSecret(secret)
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
