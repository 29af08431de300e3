using FastPool.Routing.Balancing;

namespace FastPool.Routing.Tests.Balancing;

public class LoadBalancePolicyTests
{
    [Fact]
    public void WeightedRandom_follows_the_weights_and_never_picks_weight_zero()
    {
        var policy = LoadBalancePolicies.Create(LoadBalancePolicyKind.WeightedRandom, new Random(42));
        var counts = new int[3];
        double[] weights = [1, 3, 0];
        for (int i = 0; i < 40_000; i++)
        {
            counts[policy.Pick(weights, new int[3])]++;
        }

        Assert.Equal(0, counts[2]);
        double share = counts[1] / 40_000.0;
        Assert.InRange(share, 0.72, 0.78);
    }

    [Fact]
    public void Every_policy_returns_minus_one_when_no_candidate_has_weight()
    {
        foreach (var kind in Enum.GetValues<LoadBalancePolicyKind>())
        {
            var policy = LoadBalancePolicies.Create(kind, new Random(1));
            Assert.Equal(-1, policy.Pick([0, 0], [0, 0]));
            Assert.Equal(-1, policy.Pick([], []));
        }
    }

    [Fact]
    public void RoundRobin_takes_the_weighted_candidates_in_turn()
    {
        var policy = LoadBalancePolicies.Create(LoadBalancePolicyKind.RoundRobin);
        var picks = Enumerable.Range(0, 6).Select(_ => policy.Pick([1, 0, 1], [0, 0, 0])).ToArray();
        Assert.DoesNotContain(1, picks);
        Assert.Equal(3, picks.Count(p => p == 0));
        Assert.Equal(3, picks.Count(p => p == 2));
        for (int i = 1; i < picks.Length; i++)
        {
            Assert.NotEqual(picks[i - 1], picks[i]);
        }
    }

    [Fact]
    public void LeastOutstanding_picks_the_least_busy_relative_to_weight()
    {
        var policy = LoadBalancePolicies.Create(LoadBalancePolicyKind.LeastOutstanding);
        Assert.Equal(1, policy.Pick([1, 1, 1], [5, 2, 3]));

        // Weight 2 carrying 4 is as busy as weight 1 carrying 2: the tie goes to the heavier node; 5 on it loses.
        Assert.Equal(0, policy.Pick([2, 1], [4, 2]));
        Assert.Equal(1, policy.Pick([2, 1], [5, 2]));
        Assert.Equal(2, policy.Pick([1, 0, 1], [3, 0, 1]));
    }

    [Theory]
    [InlineData("weighted_random", LoadBalancePolicyKind.WeightedRandom)]
    [InlineData(" Round_Robin ", LoadBalancePolicyKind.RoundRobin)]
    [InlineData("least_outstanding", LoadBalancePolicyKind.LeastOutstanding)]
    public void Policy_names_parse(string text, LoadBalancePolicyKind expected)
    {
        Assert.True(LoadBalancePolicies.TryParse(text, out var kind));
        Assert.Equal(expected, kind);
        Assert.Equal(text.Trim().ToLowerInvariant(), LoadBalancePolicies.Name(kind));
    }

    [Fact]
    public void Unknown_policy_names_do_not_parse() => Assert.False(LoadBalancePolicies.TryParse("fastest", out _));
}
