using System.Text.RegularExpressions;
using FastPool.Routing.Balancing;
using FastPool.Routing.Classification;

namespace FastPool.Proxy.Configuration;

/// <summary>disable_load_balance_on_write (Pgpool-II's values): what a write does to later reads of the same client.</summary>
public enum WriteStickiness
{
    /// <summary>An explicit transaction's reads are balanced until its first write; the rest of it goes to the primary.</summary>
    Transaction,

    /// <summary>As transaction; a write inside an explicit transaction also sends the client's later transactions to the primary.</summary>
    TransTransaction,

    /// <summary>After any write, everything the client sends goes to the primary until it disconnects.</summary>
    Always,

    /// <summary>Writes change nothing for later transactions (beyond read_your_writes); inside one, as <see cref="Transaction"/>.</summary>
    Off,
}

/// <summary>
/// The [fastpool] keys of replication-aware routing, with Pgpool-II's names and meaning. They apply to every
/// database entry that lists more than one node; an entry with one node is never load balanced.
/// </summary>
public sealed record RoutingSettings
{
    /// <summary>load_balance_mode: reads outside explicit read-write transactions may go to standbys.</summary>
    public bool LoadBalanceMode { get; init; } = true;

    /// <summary>disable_load_balance_on_write.</summary>
    public WriteStickiness DisableLoadBalanceOnWrite { get; init; } = WriteStickiness.Transaction;

    /// <summary>
    /// read_your_writes: after a client's write commits, its reads go only to nodes that have replayed past the
    /// primary's WAL position at that commit (the primary always has).
    /// </summary>
    public bool ReadYourWrites { get; init; } = true;

    /// <summary>statement_level_load_balance: pick the standby per transaction rather than once per client.</summary>
    public bool StatementLevelLoadBalance { get; init; }

    private readonly double[] _weights = [];

    /// <summary>backend_weight: one weight per node index (missing ones are 1; 0 takes a standby out of balancing).</summary>
    public IReadOnlyList<double> BackendWeights { get => _weights; init => _weights = [.. value]; }

    /// <summary>load_balance_policy.</summary>
    public LoadBalancePolicyKind Policy { get; init; } = LoadBalancePolicyKind.WeightedRandom;

    /// <summary>delay_threshold: a standby further behind the primary than this many WAL bytes gets no reads (0 = no limit).</summary>
    public long DelayThresholdBytes { get; init; }

    /// <summary>delay_threshold_by_time: a standby whose replay lags more than this gets no reads (zero = no limit).</summary>
    public TimeSpan DelayThresholdByTime { get; init; }

    /// <summary>write_function_list (added to FastPool's built-in writers) and read_only_function_list.</summary>
    public ClassifierOptions Classifier { get; init; } = ClassifierOptions.Default;

    /// <summary>primary_routing_query_pattern_list: statements matching any of these go to the primary.</summary>
    public IReadOnlyList<Regex> PrimaryRoutingPatterns { get; init; } = [];

    /// <summary>database_redirect_preference_list: where reads of matching client database names go.</summary>
    public IReadOnlyList<RedirectPreference> DatabaseRedirects { get; init; } = [];

    /// <summary>app_name_redirect_preference_list: the same by application_name (it wins over the database list).</summary>
    public IReadOnlyList<RedirectPreference> AppNameRedirects { get; init; } = [];

    // Read for every balanced read: an array, not the list's interface calls.
    public double WeightOf(int nodeId) => (uint)nodeId < (uint)_weights.Length ? _weights[nodeId] : 1.0;
}

/// <summary>Which node a redirect preference names.</summary>
public enum RedirectTarget
{
    Primary,
    Standby,
    Node,
}

/// <summary>
/// One entry of a redirect preference list, <c>pattern:target[(ratio)]</c>: reads of clients whose database (or
/// application_name) matches the whole pattern go to the target (<c>primary</c>, <c>standby</c> or a node id);
/// with a ratio below 1 only that share of them does, the rest go to the primary.
/// </summary>
public sealed record RedirectPreference(Regex Pattern, RedirectTarget Target, int NodeId, double Ratio)
{
    /// <summary>The first preference whose pattern matches <paramref name="name"/>, or null.</summary>
    public static RedirectPreference? Find(IReadOnlyList<RedirectPreference> list, string? name)
    {
        if (name is null)
        {
            return null;
        }

        foreach (var preference in list)
        {
            try
            {
                if (preference.Pattern.IsMatch(name))
                {
                    return preference;
                }
            }
            catch (RegexMatchTimeoutException)
            {
                // A pattern that cannot decide in time does not apply.
            }
        }

        return null;
    }
}
