namespace FastPool.Routing.Balancing;

/// <summary>load_balance_policy: how a read picks among the standbys that may serve it.</summary>
public enum LoadBalancePolicyKind
{
    /// <summary>Random, in proportion to backend_weight (Pgpool-II's only policy).</summary>
    WeightedRandom,

    /// <summary>Each eligible node in turn, skipping nodes of weight 0.</summary>
    RoundRobin,

    /// <summary>The node with the fewest server connections in use by clients right now; weight breaks ties.</summary>
    LeastOutstanding,
}

/// <summary>
/// One load-balancing decision (STYLE.md: a named policy behind a one-method interface). The caller passes the
/// eligible candidates only, as parallel spans on the stack, so a pick allocates nothing.
/// </summary>
public interface ILoadBalancePolicy
{
    /// <summary>The index of the chosen candidate, or -1 when no candidate has a positive weight.</summary>
    /// <param name="weights">backend_weight of each candidate (0 = never chosen).</param>
    /// <param name="outstanding">Server connections each candidate has in use by clients now.</param>
    int Pick(ReadOnlySpan<double> weights, ReadOnlySpan<int> outstanding);
}

/// <summary>Creates the policy named by load_balance_policy.</summary>
public static class LoadBalancePolicies
{
    /// <param name="random">The randomness weighted_random uses (injected so tests can fix it).</param>
    public static ILoadBalancePolicy Create(LoadBalancePolicyKind kind, Random? random = null) => kind switch
    {
        LoadBalancePolicyKind.RoundRobin => new RoundRobinPolicy(),
        LoadBalancePolicyKind.LeastOutstanding => new LeastOutstandingPolicy(),
        _ => new WeightedRandomPolicy(random ?? Random.Shared),
    };

    /// <summary>The config spelling of a policy: weighted_random, round_robin, least_outstanding.</summary>
    public static bool TryParse(string text, out LoadBalancePolicyKind kind)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "weighted_random":
            case "random":
                kind = LoadBalancePolicyKind.WeightedRandom;
                return true;
            case "round_robin":
                kind = LoadBalancePolicyKind.RoundRobin;
                return true;
            case "least_outstanding":
                kind = LoadBalancePolicyKind.LeastOutstanding;
                return true;
            default:
                kind = default;
                return false;
        }
    }

    public static string Name(LoadBalancePolicyKind kind) => kind switch
    {
        LoadBalancePolicyKind.RoundRobin => "round_robin",
        LoadBalancePolicyKind.LeastOutstanding => "least_outstanding",
        _ => "weighted_random",
    };
}

/// <summary>Picks at random with probability weight / sum of weights.</summary>
public sealed class WeightedRandomPolicy(Random random) : ILoadBalancePolicy
{
    public int Pick(ReadOnlySpan<double> weights, ReadOnlySpan<int> outstanding)
    {
        double total = 0;
        foreach (var w in weights)
        {
            total += Math.Max(0, w);
        }

        if (total <= 0)
        {
            return -1;
        }

        // Random is not thread-safe unless it is Random.Shared; sessions on several threads share one policy.
        double point;
        if (ReferenceEquals(random, Random.Shared))
        {
            point = random.NextDouble() * total;
        }
        else
        {
            lock (random)
            {
                point = random.NextDouble() * total;
            }
        }

        int last = -1;
        for (int i = 0; i < weights.Length; i++)
        {
            if (weights[i] <= 0)
            {
                continue;
            }

            last = i;
            point -= weights[i];
            if (point < 0)
            {
                return i;
            }
        }

        // Rounding can leave a sliver past the last positive weight.
        return last;
    }
}

/// <summary>Takes the candidates in turn; a shared counter, so concurrent sessions still spread evenly.</summary>
public sealed class RoundRobinPolicy : ILoadBalancePolicy
{
    private uint _next;

    public int Pick(ReadOnlySpan<double> weights, ReadOnlySpan<int> outstanding)
    {
        int eligible = 0;
        foreach (var w in weights)
        {
            if (w > 0)
            {
                eligible++;
            }
        }

        if (eligible == 0)
        {
            return -1;
        }

        // The turn counts over the weighted candidates only, so a weight-0 node does not give its turn to its neighbour.
        int turn = (int)((Interlocked.Increment(ref _next) - 1) % (uint)eligible);
        for (int i = 0; i < weights.Length; i++)
        {
            if (weights[i] > 0 && turn-- == 0)
            {
                return i;
            }
        }

        return -1;
    }
}

/// <summary>
/// Fewest connections in use relative to weight (a node of weight 2 may carry twice the load of a node of
/// weight 1 before it looks as busy), so a slow or overloaded standby naturally gets fewer new readers.
/// </summary>
public sealed class LeastOutstandingPolicy : ILoadBalancePolicy
{
    public int Pick(ReadOnlySpan<double> weights, ReadOnlySpan<int> outstanding)
    {
        int best = -1;
        double bestLoad = double.MaxValue;
        for (int i = 0; i < weights.Length; i++)
        {
            if (weights[i] <= 0)
            {
                continue;
            }

            double load = outstanding[i] / weights[i];
            if (load < bestLoad || (load == bestLoad && best >= 0 && weights[i] > weights[best]))
            {
                best = i;
                bestLoad = load;
            }
        }

        return best;
    }
}
