namespace FastPool.Load.Scenarios;

/// <summary>The named scenarios of <c>--scenario</c>; all but <c>connect</c>-style options are scripts on the pgbench tables.</summary>
internal static class BuiltInScenarios
{
    public const string Custom = "script";

    public static readonly string[] Names = ["select", "extended", "prepared", "tpcb", "connect", "crowd", "mixed", "cache", Custom];

    // pgbench's built-in "select-only" and "tpcb-like" scripts (pgbench.c), in our script syntax.
    internal const string SelectScript = """
        \set aid random(1, 100000 * :scale)
        SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
        """;

    internal const string TpcbScript = """
        \set aid random(1, 100000 * :scale)
        \set bid random(1, 1 * :scale)
        \set tid random(1, 10 * :scale)
        \set delta random(-5000, 5000)
        BEGIN;
        UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
        SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
        UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
        UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
        INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
        END;
        """;

    // The write half of "mixed": one autocommit UPDATE, the kind a read/write router must send to the primary.
    internal const string WriteScript = """
        \set aid random(1, 100000 * :scale)
        \set delta random(-5000, 5000)
        UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
        """;

    // The same expensive read every time (a full scan of pgbench_accounts), which a result cache can answer.
    internal const string CacheScript = """
        SELECT bid, count(*), sum(abalance) FROM pgbench_accounts GROUP BY bid ORDER BY bid;
        """;

    /// <param name="name">One of <see cref="Names"/>.</param>
    /// <param name="clients">--clients, for crowd's default active count.</param>
    /// <param name="readRatio">--read-ratio for mixed (0..1).</param>
    /// <param name="active">--active for crowd.</param>
    /// <param name="customScript">The parsed --script, for "script".</param>
    /// <param name="mode">--mode for the scenarios whose protocol is not their point (tpcb, mixed, cache, crowd, connect, script).</param>
    public static Scenario Create(string name, int clients, double readRatio, int? active, Script? customScript, StatementMode? mode)
    {
        var select = Parse("select", SelectScript);
        return name switch
        {
            "select" => new Scenario(name, [new(select, 1)], StatementMode.Inline),
            "extended" => new Scenario(name, [new(select, 1)], StatementMode.Extended),
            "prepared" => new Scenario(name, [new(select, 1)], StatementMode.Prepared),
            "tpcb" => new Scenario(name, [new(Parse("tpcb", TpcbScript), 1)], mode ?? StatementMode.Extended),
            "connect" => new Scenario(name, [new(select, 1)], mode ?? StatementMode.Extended, ConnectPerTransaction: true),
            "crowd" => new Scenario(name, [new(select, 1)], mode ?? StatementMode.Extended, ActiveClients: Math.Clamp(active ?? Math.Max(1, clients / 20), 1, clients)),
            "mixed" => new Scenario(
                name,
                [new(select, readRatio), new(Parse("write", WriteScript), 1 - readRatio)],
                mode ?? StatementMode.Extended),
            "cache" => new Scenario(name, [new(Parse("cache", CacheScript), 1)], mode ?? StatementMode.Extended),
            Custom => new Scenario(
                name,
                [new(customScript ?? throw new Cli.UsageException("--scenario script needs --script FILE."), 1)],
                mode ?? StatementMode.Extended,
                IsCustom: true),
            _ => throw new Cli.UsageException($"Unknown scenario '{name}'; one of: {string.Join(", ", Names)}."),
        };
    }

    private static Script Parse(string name, string text) => ScriptParser.Parse(name, text);
}
