using System.Globalization;
using System.Text.RegularExpressions;
using FastPool.Routing.Balancing;
using FastPool.Routing.Classification;

namespace FastPool.Proxy.Configuration;

public static partial class ConfigLoader
{
    private sealed partial class Builder
    {
        private const string StickinessAccepted = "transaction, trans_transaction, always, off";
        private const string PolicyAccepted = "weighted_random, round_robin, least_outstanding";

        // Pgpool-II patterns are regular expressions matched against the whole statement text; a bound keeps a
        // pathological pattern from stalling a session's pump.
        private static readonly TimeSpan s_patternTimeout = TimeSpan.FromMilliseconds(100);

        /// <summary>The replication-routing keys of [fastpool]; false for any other key.</summary>
        private bool TryApplyRouting(IniEntry e, string key)
        {
            var routing = _fastPool.Routing;
            string value = Unquote(e.Value);
            switch (key)
            {
                case "load_balance_mode":
                    if (TryBool(e, key, out var lb))
                    {
                        routing = routing with { LoadBalanceMode = lb };
                    }

                    break;
                case "read_your_writes":
                    if (TryBool(e, key, out var ryw))
                    {
                        routing = routing with { ReadYourWrites = ryw };
                    }

                    break;
                case "statement_level_load_balance":
                    if (TryBool(e, key, out var statementLevel))
                    {
                        routing = routing with { StatementLevelLoadBalance = statementLevel };
                    }

                    break;
                case "disable_load_balance_on_write":
                    WriteStickiness? stickiness = value.Trim().ToLowerInvariant() switch
                    {
                        "transaction" => WriteStickiness.Transaction,
                        "trans_transaction" => WriteStickiness.TransTransaction,
                        "always" => WriteStickiness.Always,
                        "off" => WriteStickiness.Off,
                        _ => null,
                    };
                    if (stickiness is null)
                    {
                        InvalidValue(e, key, e.Value, StickinessAccepted);
                    }
                    else
                    {
                        routing = routing with { DisableLoadBalanceOnWrite = stickiness.Value };
                    }

                    break;
                case "load_balance_policy":
                    if (LoadBalancePolicies.TryParse(value, out var policy))
                    {
                        routing = routing with { Policy = policy };
                    }
                    else
                    {
                        InvalidValue(e, key, e.Value, PolicyAccepted);
                    }

                    break;
                case "backend_weight":
                    if (TryWeights(e, key, value, out var weights))
                    {
                        routing = routing with { BackendWeights = weights };
                        _routingEntries[key] = e;
                    }

                    break;
                case "delay_threshold":
                    if (TryLong(e, key, 0, long.MaxValue, out var bytes))
                    {
                        routing = routing with { DelayThresholdBytes = bytes };
                    }

                    break;
                case "delay_threshold_by_time":
                    // Pgpool-II reads a bare number as milliseconds; a unit (500ms, 2s) is taken as written.
                    if (ConfigValues.TryParseCInteger(value, out var ms) && ms >= 0)
                    {
                        routing = routing with { DelayThresholdByTime = TimeSpan.FromMilliseconds(ms) };
                    }
                    else if (TryTime(e, key, value, out var delay))
                    {
                        routing = routing with { DelayThresholdByTime = delay };
                    }

                    break;
                case "write_function_list":
                    // Added to FastPool's built-in writers (nextval, advisory locks, ...): a standby refuses those anyway.
                    if (TryFunctionList(e, key, ClassifierOptions.DefaultWriteNames.Concat(SplitList(value, ',')), out var writers))
                    {
                        routing = routing with
                        {
                            Classifier = new ClassifierOptions { WriteFunctions = writers, ReadOnlyFunctions = routing.Classifier.ReadOnlyFunctions },
                        };
                    }

                    break;
                case "read_only_function_list":
                    if (TryFunctionList(e, key, SplitList(value, ','), out var readers))
                    {
                        routing = routing with
                        {
                            Classifier = new ClassifierOptions { WriteFunctions = routing.Classifier.WriteFunctions, ReadOnlyFunctions = readers },
                        };
                    }

                    break;
                case "primary_routing_query_pattern_list":
                    if (TryPatterns(e, key, value, out var patterns))
                    {
                        routing = routing with { PrimaryRoutingPatterns = patterns };
                    }

                    break;
                case "database_redirect_preference_list":
                    if (TryRedirects(e, key, value, out var byDatabase))
                    {
                        routing = routing with { DatabaseRedirects = byDatabase };
                        _routingEntries[key] = e;
                    }

                    break;
                case "app_name_redirect_preference_list":
                    if (TryRedirects(e, key, value, out var byApp))
                    {
                        routing = routing with { AppNameRedirects = byApp };
                        _routingEntries[key] = e;
                    }

                    break;
                default:
                    return false;
            }

            _fastPool = _fastPool with { Routing = routing };
            return true;
        }

        /// <summary>
        /// Routing values that parse but cannot do what they say with the nodes the databases list: warned about, not
        /// refused, since a database added by a later reload may give them meaning (Pgpool-II checks them against its
        /// backend list too).
        /// </summary>
        private void CheckRoutingAgainstNodes(IReadOnlyList<DatabaseConfig> databases, DatabaseConfig? fallback)
        {
            var routing = _fastPool.Routing;
            int mostNodes = 0;
            var multiNode = new List<DatabaseConfig>();
            foreach (var db in fallback is null ? databases : databases.Append(fallback))
            {
                mostNodes = Math.Max(mostNodes, db.Nodes.Count);
                if (db.Nodes.Count > 1)
                {
                    multiNode.Add(db);
                }
            }

            if (_routingEntries.TryGetValue("backend_weight", out var weightEntry))
            {
                if (routing.BackendWeights.Count > mostNodes)
                {
                    Warn(weightEntry, "backend_weight", $"backend_weight lists {routing.BackendWeights.Count} weights but no database has more than {mostNodes} node(s); "
                        + $"the weights after the first {mostNodes} are not used");
                }

                foreach (var db in multiNode)
                {
                    bool allZero = true;
                    for (int i = 0; i < db.Nodes.Count && allZero; i++)
                    {
                        allZero = routing.WeightOf(i) <= 0;
                    }

                    if (allZero)
                    {
                        Warn(weightEntry, "backend_weight", $"backend_weight gives every node of database \"{db.Name}\" weight 0, so none takes balanced reads: "
                            + "all its statements go to the primary");
                    }
                }
            }

            foreach (var (key, list) in new[] { ("database_redirect_preference_list", routing.DatabaseRedirects), ("app_name_redirect_preference_list", routing.AppNameRedirects) })
            {
                if (!_routingEntries.TryGetValue(key, out var entry))
                {
                    continue;
                }

                foreach (var preference in list)
                {
                    if (preference.Target == RedirectTarget.Node && preference.NodeId >= mostNodes)
                    {
                        Warn(entry, key, $"{key} names node {preference.NodeId}, but no database has more than {mostNodes} node(s) (numbered from 0); "
                            + "the reads it matches are balanced over the standbys there are");
                    }
                }
            }
        }

        /// <summary>Pgpool-II's <c>pattern:target[(ratio)],...</c>; the pattern must match the whole name, as there.</summary>
        private bool TryRedirects(IniEntry e, string key, string value, out RedirectPreference[] list)
        {
            const string Accepted = "a comma list of pattern:target or pattern:target(ratio), target being primary, standby or a node id, ratio between 0 and 1 (e.g. 'postgres:primary,report.*:standby(0.5)')";
            var parts = SplitList(value, ',');
            list = new RedirectPreference[parts.Count];
            for (int i = 0; i < parts.Count; i++)
            {
                var part = parts[i];
                int colon = part.LastIndexOf(':');
                if (colon <= 0 || colon == part.Length - 1)
                {
                    InvalidValue(e, key, e.Value, Accepted);
                    return false;
                }

                string pattern = part[..colon].Trim();
                string target = part[(colon + 1)..].Trim();
                double ratio = 1;
                int open = target.IndexOf('(');
                if (open >= 0)
                {
                    if (!target.EndsWith(')')
                        || !double.TryParse(target[(open + 1)..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out ratio)
                        || ratio < 0 || ratio > 1)
                    {
                        InvalidValue(e, key, e.Value, Accepted);
                        return false;
                    }

                    target = target[..open].Trim();
                }

                RedirectTarget kind;
                int nodeId = -1;
                if (target.Equals("primary", StringComparison.OrdinalIgnoreCase))
                {
                    kind = RedirectTarget.Primary;
                }
                else if (target.Equals("standby", StringComparison.OrdinalIgnoreCase))
                {
                    kind = RedirectTarget.Standby;
                }
                else if (int.TryParse(target, NumberStyles.None, CultureInfo.InvariantCulture, out nodeId))
                {
                    kind = RedirectTarget.Node;
                }
                else
                {
                    InvalidValue(e, key, e.Value, Accepted);
                    return false;
                }

                try
                {
                    var regex = new Regex("^(?:" + pattern + ")$", RegexOptions.CultureInvariant, s_patternTimeout);
                    list[i] = new RedirectPreference(regex, kind, nodeId, ratio);
                }
                catch (ArgumentException ex)
                {
                    Error(e, key, $"invalid regular expression \"{pattern}\" in {key}: {RegexProblem(ex)}");
                    return false;
                }
            }

            return true;
        }

        private bool TryWeights(IniEntry e, string key, string value, out double[] weights)
        {
            var parts = SplitList(value, ',');
            weights = new double[parts.Count];
            for (int i = 0; i < parts.Count; i++)
            {
                if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out weights[i]) || weights[i] < 0 || !double.IsFinite(weights[i]))
                {
                    InvalidValue(e, key, e.Value, "a comma list of non-negative numbers, one per node (e.g. 1,1,2)");
                    return false;
                }
            }

            return true;
        }

        private bool TryPatterns(IniEntry e, string key, string value, out Regex[] patterns)
        {
            // Pgpool-II separates the patterns with ';'.
            var parts = SplitList(value, ';');
            patterns = new Regex[parts.Count];
            for (int i = 0; i < parts.Count; i++)
            {
                try
                {
                    // Checked alone first: an unbalanced ')' must not escape the group it is put in below.
                    _ = new Regex(parts[i], RegexOptions.CultureInvariant);

                    // Anchored as Pgpool-II anchors them (^ and $ around each): the pattern must match the whole
                    // statement. '.' crosses line breaks, as in the POSIX expressions Pgpool-II uses.
                    patterns[i] = new Regex(
                        "^(?:" + parts[i] + ")$",
                        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Singleline | RegexOptions.Compiled,
                        s_patternTimeout);
                }
                catch (ArgumentException ex)
                {
                    Error(e, key, $"invalid regular expression \"{parts[i]}\" in {key}: {RegexProblem(ex)}");
                    return false;
                }
            }

            return true;
        }

        /// <summary>
        /// What is wrong with a pattern, in words: the native executable carries no .NET message texts (resource keys
        /// like "MakeException" stand in for them), so the parser's error code and position are spelled out instead.
        /// </summary>
        private static string RegexProblem(ArgumentException ex)
        {
            if (ex is not RegexParseException parse)
            {
                return ex.Message;
            }

            var words = new System.Text.StringBuilder();
            foreach (char c in parse.Error.ToString())
            {
                if (char.IsUpper(c) && words.Length > 0)
                {
                    words.Append(' ');
                }

                words.Append(char.ToLowerInvariant(c));
            }

            return $"{words} at character {parse.Offset}";
        }

        /// <summary>write_function_list / read_only_function_list: names or regular expressions matching whole function names.</summary>
        private bool TryFunctionList(IniEntry e, string key, IEnumerable<string> entries, out FunctionList list)
        {
            try
            {
                list = new FunctionList(entries);
                return true;
            }
            catch (ArgumentException ex)
            {
                Error(e, key, $"invalid regular expression in {key}: {RegexProblem(ex)}");
                list = FunctionList.Empty;
                return false;
            }
        }

        /// <summary>Pgpool-II's configuration quotes string values; PgBouncer's does not. Both are accepted.</summary>
        private static string Unquote(string value)
        {
            var v = value.Trim();
            return v.Length >= 2 && v[0] == '\'' && v[^1] == '\'' ? v[1..^1] : v;
        }

        private static List<string> SplitList(string value, char separator) =>
            [.. value.Split(separator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
    }
}
