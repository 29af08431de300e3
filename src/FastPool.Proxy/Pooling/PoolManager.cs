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

    public IEnumerable<ServerPool> Pools => _pools.Values;

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
        config.Users.TryGetValue(clientUser, out var user);
        config.AuthFileUsers.TryGetValue(database.User ?? clientUser, out var secret);

        // Only a plain-text secret can answer a server's password, md5 or SCRAM challenge; md5/SCRAM secrets are for
        // client auth. An md5 secret is exactly "md5" + 32 hex digits: a password that merely starts with "md5" is plain.
        string? password = secret is not null && !IsMd5Secret(secret) && !ScramSecret.LooksLikeSecret(secret)
            ? secret
            : null;
        var key = new PoolKey(database, clientDatabase, clientUser, password);
        var settings = PoolSettings.From(config, database, user);
        var dbLimit = _dbLimits.GetOrAdd(key.Database.Name == "*" ? "*" + clientDatabase : database.Name, _ => new LimitCounter(database.MaxDbConnections ?? config.MaxDbConnections));
        var userLimit = _userLimits.GetOrAdd(clientUser, _ => new LimitCounter(user?.MaxUserConnections ?? config.MaxUserConnections));
        return new ServerPool(this, key, node, settings, dbLimit, userLimit, _time, _logger);
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

    public void Maintain()
    {
        foreach (var pool in _pools.Values)
        {
            pool.Maintain();
        }
    }

    public void Shutdown()
    {
        foreach (var pool in _pools.Values)
        {
            pool.Shutdown();
        }
    }

    private static bool IsMd5Secret(string secret) =>
        secret.Length == 35 && secret.StartsWith("md5", StringComparison.Ordinal) && !secret.AsSpan(3).ContainsAnyExcept("0123456789abcdef");
}
