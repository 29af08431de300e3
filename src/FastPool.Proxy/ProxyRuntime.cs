using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pipeline;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Sessions;
using FastPool.Proxy.Topology;
using FastPool.Proxy.Transport;
using Microsoft.Extensions.Logging;

namespace FastPool.Proxy;

/// <summary>The shared services every client connection and session uses; one per running proxy.</summary>
internal sealed class ProxyRuntime
{
    private readonly Dictionary<string, DatabaseTopology> _topologies = new(StringComparer.Ordinal);
    private readonly Lock _topologyLock = new();
    private volatile ProxyConfig _config;

    public ProxyRuntime(ProxyConfig config, TimeProvider time, ILoggerFactory loggerFactory)
    {
        _config = config;
        Time = time;
        Logger = loggerFactory.CreateLogger("FastPool");
        Transport = ConnectionTransport.Create(config.FastPool.Transport, config.FastPool.IoThreads,
            ex => Log.Unexpected(Logger, 0, ex.Message, ex));
        Pools = new PoolManager(config, time, Logger, Transport);
        Cancels = new CancelRegistry(Logger);
        Stats = new ProxyStats();
        QueryPipeline = Pipeline.QueryPipeline.Build(Pools, Pipeline.QueryPipeline.DefaultStages());
    }

    public ProxyConfig Config => _config;

    public TimeProvider Time { get; }

    public ILogger Logger { get; }

    public PoolManager Pools { get; }

    /// <summary>Moves the bytes of every client and server connection.</summary>
    public ConnectionTransport Transport { get; }

    public CancelRegistry Cancels { get; }

    public ProxyStats Stats { get; }

    /// <summary>Salts for SCRAM exchanges without a stored SCRAM secret (plain passwords, unknown users).</summary>
    public Connections.ScramSalts ScramSalts { get; } = Connections.ScramSalts.CreateRandom();

    public QueryDelegate QueryPipeline { get; }

    /// <summary>Tracks sessions so shutdown can wait for them.</summary>
    public SessionTracker Sessions { get; } = new();

    /// <summary>The runtime topology (node roles and health) for a database entry; one per entry name.</summary>
    public DatabaseTopology GetTopology(DatabaseConfig database)
    {
        lock (_topologyLock)
        {
            if (!_topologies.TryGetValue(database.Name, out var topology) || !ReferenceEquals(topology.Config, database))
            {
                topology = new DatabaseTopology(database);
                _topologies[database.Name] = topology;
            }

            return topology;
        }
    }
}
