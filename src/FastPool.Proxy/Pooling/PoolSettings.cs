using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Pooling;

/// <summary>The effective pool settings for one (database, user) pair: per-database, then per-user, then global values.</summary>
internal sealed record PoolSettings
{
    public required PoolMode Mode { get; init; }
    public required int Size { get; init; }
    public required int MinSize { get; init; }
    public required int ReserveSize { get; init; }
    public required TimeSpan ReserveTimeout { get; init; }
    public required TimeSpan QueryWaitTimeout { get; init; }
    public required TimeSpan ConnectTimeout { get; init; }
    public required TimeSpan LoginRetry { get; init; }
    public required TimeSpan IdleTimeout { get; init; }
    public required TimeSpan Lifetime { get; init; }
    public required TimeSpan CheckDelay { get; init; }
    public required string CheckQuery { get; init; }
    public required string ResetQuery { get; init; }
    public string? ConnectQuery { get; init; }

    public static PoolSettings From(ProxyConfig config, DatabaseConfig database, UserConfig? user) => new()
    {
        Mode = database.PoolMode ?? user?.PoolMode ?? config.PoolMode,
        Size = database.PoolSize ?? user?.PoolSize ?? config.DefaultPoolSize,
        MinSize = database.MinPoolSize ?? config.MinPoolSize,
        ReserveSize = database.ReservePoolSize ?? config.ReservePoolSize,
        ReserveTimeout = config.ReservePoolTimeout,
        QueryWaitTimeout = config.QueryWaitTimeout,
        ConnectTimeout = config.ServerConnectTimeout,
        LoginRetry = config.ServerLoginRetry,
        IdleTimeout = config.ServerIdleTimeout,
        Lifetime = config.ServerLifetime,
        CheckDelay = config.ServerCheckDelay,
        CheckQuery = config.ServerCheckQuery,
        ResetQuery = config.ServerResetQuery,
        ConnectQuery = database.ConnectQuery,
    };
}
