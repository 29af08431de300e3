namespace FastPool.Proxy.Configuration;

/// <summary>What FastPool does when the primary of a multi-node database entry is lost.</summary>
public enum FailoverMode
{
    /// <summary>Promote the standby that received the most WAL with pg_promote().</summary>
    Promote,

    /// <summary>Run failover_command and take whichever node leaves recovery as the new primary.</summary>
    Command,

    /// <summary>Only detach the failed node; writes wait until a primary is back.</summary>
    Off,
}

/// <summary>
/// Health checks and failover, in the [fastpool] section, with Pgpool-II's names where Pgpool-II has the
/// setting. They apply to database entries that list more than one node; a single-node entry behaves as
/// under PgBouncer (no extra connections, no failover).
/// </summary>
public sealed record FailoverSettings
{
    /// <summary>health_check_period: how often each node is probed on its own connection (0 = only on suspicion).</summary>
    public TimeSpan HealthCheckPeriod { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>health_check_timeout: how long one probe (connect, login, query) may take.</summary>
    public TimeSpan HealthCheckTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>health_check_max_retries: failed probes retried before a node is declared down (a refused connection needs none).</summary>
    public int HealthCheckMaxRetries { get; init; } = 2;

    /// <summary>health_check_retry_delay: pause between two probes of a node that did not answer.</summary>
    public TimeSpan HealthCheckRetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>health_check_user / health_check_password (default: sr_check_user, the entry's user, postgres).</summary>
    public string? HealthCheckUser { get; init; }

    public string? HealthCheckPassword { get; init; }

    /// <summary>failover = promote | command | off.</summary>
    public FailoverMode Mode { get; init; } = FailoverMode.Promote;

    /// <summary>failover_command: shell command with Pgpool-II's % placeholders.</summary>
    public string? FailoverCommand { get; init; }

    /// <summary>follow_primary_command: run for each remaining standby after a failover.</summary>
    public string? FollowPrimaryCommand { get; init; }

    /// <summary>failover_command_timeout: bound on one failover/follow_primary command and on waiting for promotion.</summary>
    public TimeSpan FailoverCommandTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>failover_user / failover_password: a superuser login for pg_promote() (default: the health-check login).</summary>
    public string? FailoverUser { get; init; }

    public string? FailoverPassword { get; init; }

    /// <summary>failover_wait_timeout: how long a client that needs the primary waits for one during a failover.</summary>
    public TimeSpan FailoverWaitTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>auto_failback: re-attach a node that comes back as a standby streaming from the current primary.</summary>
    public bool AutoFailback { get; init; }

    /// <summary>failover_on_backend_error: a lost server connection detaches its node without a confirming probe (Pgpool-II's unsafe mode).</summary>
    public bool FailoverOnBackendError { get; init; }

    /// <summary>recovery_command: rebuilds a node as a standby of the primary for RECOVER NODE (placeholders as failover_command).</summary>
    public string? RecoveryCommand { get; init; }

    /// <summary>recovery_timeout: bound on recovery_command and on the rebuilt node starting to stream.</summary>
    public TimeSpan RecoveryTimeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>backend_data_directory: comma list of data directories by node index, for %D / %R.</summary>
    public IReadOnlyList<string> DataDirectories { get; init; } = [];
}
