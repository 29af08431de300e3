using System.Text;
using BenchmarkDotNet.Attributes;
using FastPool.Routing.Classification;

namespace FastPool.Benchmarks;

/// <summary>Read/write classification per statement (issue target: at most 200 ns and 0 B for a typical statement).</summary>
[MemoryDiagnoser]
public class ClassifierBenchmarks
{
    private byte[] _sql = [];

    [Params("pgbench-select", "orm-select", "update", "cte-write")]
    public string Statement { get; set; } = "pgbench-select";

    [GlobalSetup]
    public void Setup() => _sql = Encoding.UTF8.GetBytes(Statement switch
    {
        "pgbench-select" => "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
        "orm-select" => "SELECT u.\"Id\", u.\"Name\", u.\"Email\", o.\"Total\" FROM \"Users\" AS u LEFT JOIN \"Orders\" AS o ON o.\"UserId\" = u.\"Id\" WHERE u.\"Email\" = $1 ORDER BY o.\"Created\" DESC LIMIT 10",
        "update" => "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;",
        _ => "WITH moved AS (DELETE FROM queue WHERE id = $1 RETURNING *) INSERT INTO done SELECT * FROM moved",
    });

    // Pgpool-II style lists with regular expressions (write_function_list / read_only_function_list): what a
    // configuration that sets them pays on top of the default.
    private static readonly ClassifierOptions s_patternLists = new()
    {
        WriteFunctions = new FunctionList([.. ClassifierOptions.DefaultWriteNames, "audit_.*", "log_(event|change)"]),
        ReadOnlyFunctions = new FunctionList(["count", "lower", "upper", "now", "pg_.*"]),
    };

    [Benchmark(Baseline = true)]
    public QueryTraits Classify() => SqlClassifier.Classify(_sql);

    [Benchmark]
    public QueryTraits ClassifyWithPatternLists() => SqlClassifier.Classify(_sql, s_patternLists);

    /// <summary>Transaction pooling's own look at every query text: session state (SET, LISTEN, temp tables...) to carry or pin.</summary>
    [Benchmark]
    public int SessionState() => (int)FastPool.Proxy.Sessions.SqlClassifier.Classify(_sql, out _);
}
