namespace FastPool.Load.Scenarios;

/// <summary>How a script's statements reach the server.</summary>
internal enum StatementMode
{
    /// <summary>Values written into the SQL as literals, a fresh unnamed statement each time (closest to pgbench -M simple).</summary>
    Inline,

    /// <summary>Bound parameters, unnamed statement parsed each time (pgbench -M extended).</summary>
    Extended,

    /// <summary>Bound parameters, each statement prepared once per connection (pgbench -M prepared).</summary>
    Prepared,
}

internal sealed record WeightedScript(Script Script, double Weight);

/// <summary>
/// What each client does per transaction: pick one script by weight and run it.
/// <paramref name="ConnectPerTransaction"/> opens a new connection for every transaction;
/// <paramref name="ActiveClients"/> (crowd) lets only that many clients work while the rest hold idle sessions.
/// </summary>
internal sealed record Scenario(
    string Name,
    IReadOnlyList<WeightedScript> Scripts,
    StatementMode Mode,
    bool ConnectPerTransaction = false,
    int? ActiveClients = null,
    bool IsCustom = false)
{
    public bool UsesScale => Scripts.Any(s => s.Script.Uses(Script.Scale));
}
