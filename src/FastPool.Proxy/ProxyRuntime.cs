using System.Collections.Concurrent;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Connections;
using FastPool.Proxy.Pipeline;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Sessions;
using FastPool.Proxy.Topology;
using FastPool.Proxy.Transport;
using Microsoft.Extensions.Logging;

namespace FastPool.Proxy;

/// <summary>The shared services every client connection and session uses; one per running proxy.</summary>
internal sealed partial class ProxyRuntime
{
    private readonly Dictionary<string, DatabaseTopology> _topologies = new(StringComparer.Ordinal);
    private readonly Lock _topologyLock = new();
    private volatile ProxyConfig _config;

    public ProxyRuntime(ProxyConfig config, TimeProvider time, ILoggerFactory loggerFactory)
    {
        _config = config;
        Time = time;
        StartedAt = time.GetUtcNow();
        Logger = loggerFactory.CreateLogger("FastPool");
        Transport = ConnectionTransport.Create(config.FastPool.Transport, config.FastPool.IoThreads,
            ex => Log.Unexpected(Logger, 0, ex.Message, ex), config.FastPool.IdleSpinMicros);
        Pools = new PoolManager(config, time, Logger, Transport) { IsPaused = Control.IsPaused };
        Cancels = new CancelRegistry(Logger);
        Stats = new ProxyStats();
        NodeMonitor = new NodeMonitor(this);
        Failover = new FailoverCoordinator(this);
        Health = new HealthChecker(this, Failover);
        AuthQuery = new AuthQueryLookup(this);
        CacheListener = new Sessions.CacheListener(this);
        ApplyCacheConfig(config);
        QueryPipeline = Pipeline.QueryPipeline.Build(Pools, Pipeline.QueryPipeline.DefaultStages(this));
    }

    /// <summary>
    /// The current config snapshot. Read it once per decision: a reload may swap it between two reads, and each
    /// snapshot is consistent only with itself.
    /// </summary>
    public ProxyConfig Config => _config;

    public TimeProvider Time { get; }

    public DateTimeOffset StartedAt { get; }

    public ILogger Logger { get; }

    public PoolManager Pools { get; }

    /// <summary>Moves the bytes of every client and server connection.</summary>
    public ConnectionTransport Transport { get; }

    public CancelRegistry Cancels { get; }

    public ProxyStats Stats { get; }

    /// <summary>Detects node roles and replication delay (sr_check_period).</summary>
    public NodeMonitor NodeMonitor { get; }

    /// <summary>Decides node roles and statuses, and fails over when the primary is lost.</summary>
    public FailoverCoordinator Failover { get; }

    /// <summary>Per-node health checks, and the confirming probe after a client session lost its server.</summary>
    public HealthChecker Health { get; }

    /// <summary>PAUSE / KILL / DISABLE state set from the admin console.</summary>
    public DatabaseControl Control { get; } = new();

    /// <summary>Salts for SCRAM exchanges without a stored SCRAM secret (plain passwords, unknown users).</summary>
    public Connections.ScramSalts ScramSalts { get; } = Connections.ScramSalts.CreateRandom();

    /// <summary>auth_query answers (cached) for users not in the auth_file.</summary>
    public AuthQueryLookup AuthQuery { get; }

    public QueryDelegate QueryPipeline { get; }

    /// <summary>Tracks sessions so shutdown can wait for them.</summary>
    public SessionTracker Sessions { get; } = new();

    /// <summary>Every connected client by id, for the admin console (SHOW CLIENTS, KILL, KILL_CLIENT).</summary>
    public ConcurrentDictionary<long, ClientContext> Clients { get; } = new();

    /// <summary>Set by the server: what the admin SHUTDOWN command does.</summary>
    public Action<ShutdownMode>? ShutdownRequested { get; set; }

    /// <summary>Set by the server: runs after a new snapshot is in place (e.g. to retime the stats timer).</summary>
    public Action<ProxyConfig>? ConfigApplied { get; set; }

    /// <summary>The runtime topology (node roles and health) for a database entry; one per entry name.</summary>
    public DatabaseTopology GetTopology(DatabaseConfig database)
    {
        lock (_topologyLock)
        {
            // After a reload the entry is a new object; the nodes (and their health) stay as long as the entry
            // still lists the same servers.
            if (!_topologies.TryGetValue(database.Name, out var topology)
                || (!ReferenceEquals(topology.Config, database) && !topology.Config.Nodes.SequenceEqual(database.Nodes)))
            {
                topology = new DatabaseTopology(database);
                _topologies[database.Name] = topology;
            }

            return topology;
        }
    }
}
