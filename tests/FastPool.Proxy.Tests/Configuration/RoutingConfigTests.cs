using FastPool.Proxy.Configuration;
using FastPool.Routing.Balancing;
using FastPool.Routing.Classification;

namespace FastPool.Proxy.Tests.Configuration;

public class RoutingConfigTests
{
    private static ConfigLoadResult Load(string fastpool) =>
        ConfigLoader.LoadFromText($"[databases]\ndb = host=a,b port=5432\n[pgbouncer]\n[fastpool]\n{fastpool}\n", "pgbouncer.ini", Path.GetTempPath());

    private static RoutingSettings Routing(string fastpool)
    {
        var result = Load(fastpool);
        Assert.True(result.Success, string.Join(Environment.NewLine, result.Errors));
        return result.Config!.FastPool.Routing;
    }

    [Fact]
    public void Defaults_balance_reads_with_read_your_writes()
    {
        var r = Routing("");
        Assert.True(r.LoadBalanceMode);
        Assert.True(r.ReadYourWrites);
        Assert.False(r.StatementLevelLoadBalance);
        Assert.Equal(WriteStickiness.Transaction, r.DisableLoadBalanceOnWrite);
        Assert.Equal(LoadBalancePolicyKind.WeightedRandom, r.Policy);
        Assert.Equal(0, r.DelayThresholdBytes);
        Assert.Equal(TimeSpan.Zero, r.DelayThresholdByTime);
        Assert.Equal(1.0, r.WeightOf(5));
        Assert.Empty(r.PrimaryRoutingPatterns);
    }

    [Fact]
    public void Every_routing_key_is_read_with_pgpool_spellings()
    {
        var r = Routing("""
            load_balance_mode = off
            read_your_writes = 0
            statement_level_load_balance = on
            disable_load_balance_on_write = 'trans_transaction'
            load_balance_policy = least_outstanding
            backend_weight = 0, 2.5
            delay_threshold = 10000000
            delay_threshold_by_time = 1500
            write_function_list = 'my_writer,audit.log_it'
            read_only_function_list = 'now,lower'
            primary_routing_query_pattern_list = 'select .* from accounts.*;.*for\s+update.*'
            """);
        Assert.False(r.LoadBalanceMode);
        Assert.False(r.ReadYourWrites);
        Assert.True(r.StatementLevelLoadBalance);
        Assert.Equal(WriteStickiness.TransTransaction, r.DisableLoadBalanceOnWrite);
        Assert.Equal(LoadBalancePolicyKind.LeastOutstanding, r.Policy);
        Assert.Equal([0.0, 2.5], r.BackendWeights);
        Assert.Equal(10_000_000, r.DelayThresholdBytes);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), r.DelayThresholdByTime);
        Assert.Equal(2, r.PrimaryRoutingPatterns.Count);

        // The configured writers are added to the built-in ones; read_only_function_list makes other calls writes.
        Assert.True((SqlClassifier.Classify("select my_writer(1)"u8, r.Classifier) & QueryTraits.Write) != 0);
        Assert.True((SqlClassifier.Classify("select audit.log_it()"u8, r.Classifier) & QueryTraits.Write) != 0);
        Assert.True((SqlClassifier.Classify("select nextval('s')"u8, r.Classifier) & QueryTraits.Write) != 0);
        Assert.Equal(QueryTraits.None, SqlClassifier.Classify("select lower(now()::text)"u8, r.Classifier));
        Assert.True((SqlClassifier.Classify("select upper('a')"u8, r.Classifier) & QueryTraits.Write) != 0);
    }

    [Fact]
    public void Query_patterns_are_anchored_to_the_whole_statement()
    {
        var r = Routing("primary_routing_query_pattern_list = 'select .* from accounts.*;.*for\\s+update.*;(a)|(b)'");
        Assert.Equal(3, r.PrimaryRoutingPatterns.Count);
        Assert.Matches(r.PrimaryRoutingPatterns[0], "SELECT id FROM accounts WHERE id = 1");
        Assert.DoesNotMatch(r.PrimaryRoutingPatterns[0], "with x as (select 1) select id from accounts");
        Assert.Matches(r.PrimaryRoutingPatterns[1], "select 1\nfrom t for\n update");

        // Each pattern is one group: an alternation inside it is anchored on both sides too.
        Assert.DoesNotMatch(r.PrimaryRoutingPatterns[2], "ab");
        Assert.Matches(r.PrimaryRoutingPatterns[2], "b");
    }

    [Fact]
    public void Redirect_preference_lists_match_whole_names_in_order()
    {
        var r = Routing(
            "database_redirect_preference_list = 'postgres:primary,mydb[0-4]:1,mydb5:standby(0.3)'\n" +
            "app_name_redirect_preference_list = 'psql:primary , batch.*:2(0.5)'");
        Assert.Equal(3, r.DatabaseRedirects.Count);
        Assert.Equal(RedirectTarget.Primary, RedirectPreference.Find(r.DatabaseRedirects, "postgres")!.Target);
        Assert.Null(RedirectPreference.Find(r.DatabaseRedirects, "postgres2"));
        var node = RedirectPreference.Find(r.DatabaseRedirects, "mydb3")!;
        Assert.Equal((RedirectTarget.Node, 1, 1.0), (node.Target, node.NodeId, node.Ratio));
        var share = RedirectPreference.Find(r.DatabaseRedirects, "mydb5")!;
        Assert.Equal((RedirectTarget.Standby, 0.3), (share.Target, share.Ratio));
        Assert.Null(RedirectPreference.Find(r.DatabaseRedirects, "mydb7"));
        Assert.Equal(2, RedirectPreference.Find(r.AppNameRedirects, "batch-nightly")!.NodeId);
        Assert.Null(RedirectPreference.Find(r.AppNameRedirects, null));
    }

    [Fact]
    public void Delay_threshold_by_time_takes_units_too() => Assert.Equal(TimeSpan.FromSeconds(2), Routing("delay_threshold_by_time = 2s").DelayThresholdByTime);

    [Theory]
    [InlineData("disable_load_balance_on_write = dml_adaptive", "disable_load_balance_on_write", "transaction, trans_transaction, always, off")]
    [InlineData("load_balance_policy = fastest", "load_balance_policy", "weighted_random, round_robin, least_outstanding")]
    [InlineData("backend_weight = 1,-1", "backend_weight", "non-negative")]
    [InlineData("load_balance_mode = maybe", "load_balance_mode", "on, off")]
    [InlineData("delay_threshold = -5", "delay_threshold", "delay_threshold")]
    [InlineData("primary_routing_query_pattern_list = 'select (('", "primary_routing_query_pattern_list", "invalid regular expression \"select ((\" in primary_routing_query_pattern_list: insufficient closing parentheses at character 9")]
    [InlineData("primary_routing_query_pattern_list = 'a)|(b'", "primary_routing_query_pattern_list", "invalid regular expression")]
    [InlineData("write_function_list = 'audit_(('", "write_function_list", "invalid regular expression in write_function_list: insufficient closing parentheses")]
    [InlineData("read_only_function_list = '[a-'", "read_only_function_list", "invalid regular expression")]
    [InlineData("database_redirect_preference_list = 'mydb:replica'", "database_redirect_preference_list", "primary, standby or a node id")]
    [InlineData("app_name_redirect_preference_list = 'app:standby(1.5)'", "app_name_redirect_preference_list", "ratio between 0 and 1")]
    [InlineData("database_redirect_preference_list = 'mydb'", "database_redirect_preference_list", "pattern:target")]
    public void Bad_values_stop_startup_naming_the_key(string line, string key, string expected)
    {
        var result = Load(line);
        Assert.False(result.Success);
        var error = Assert.Single(result.Errors);
        Assert.Equal(key, error.Key);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(5, error.Line);
    }

    [Theory]
    [InlineData("backend_weight = 1,1,1", "lists 3 weights but no database has more than 2 node(s)")]
    [InlineData("backend_weight = 0,0", "gives every node of database \"db\" weight 0")]
    [InlineData("database_redirect_preference_list = 'db:2'", "names node 2, but no database has more than 2 node(s)")]
    [InlineData("app_name_redirect_preference_list = 'psql:standby,batch:5(0.5)'", "names node 5")]
    public void Routing_values_the_nodes_cannot_honour_are_warned_about(string line, string expected)
    {
        var result = Load(line);
        Assert.True(result.Success, string.Join(Environment.NewLine, result.Errors));
        var warning = Assert.Single(result.Warnings);
        Assert.Contains(expected, warning.Message, StringComparison.Ordinal);
        Assert.Equal(5, warning.Line);
    }

    [Theory]
    [InlineData("backend_weight = 0,1")]
    [InlineData("backend_weight = 1")]
    [InlineData("database_redirect_preference_list = 'db:1,postgres:primary,x:standby'")]
    public void Routing_values_that_fit_the_nodes_are_not_warned_about(string line) => Assert.Empty(Load(line).Warnings);
}
