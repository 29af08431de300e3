namespace FastPool.Load.Scenarios;

/// <summary>
/// One SQL statement of a script. <see cref="TextParts"/> is the SQL split at its placeholders
/// (one more part than <see cref="ParameterVariables"/>), so it can be joined with <c>$n</c> or with literals.
/// </summary>
internal sealed record ScriptStatement(int Line, string[] TextParts, int[] ParameterVariables)
{
    /// <summary>The statement with <c>$1..$n</c> for its placeholders, for the extended and prepared modes.</summary>
    public string ParameterizedSql { get; } = Join(TextParts, i => "$" + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>The statement with the current values written in as literals (the "inline" mode).</summary>
    public string InlineSql(long[] variables) =>
        Join(TextParts, i => variables[ParameterVariables[i]].ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static string Join(string[] parts, Func<int, string> placeholder)
    {
        var sb = new System.Text.StringBuilder(parts[0]);
        for (var i = 1; i < parts.Length; i++)
        {
            sb.Append(placeholder(i - 1)).Append(parts[i]);
        }

        return sb.ToString();
    }
}

/// <summary>A <c>\set NAME expression</c> line.</summary>
internal sealed record ScriptAssignment(int Variable, Expr Value);

/// <summary>
/// A parsed script: assignments (evaluated first, in order, each transaction) and statements (run in order;
/// the whole script is one transaction of the harness, like a pgbench script).
/// </summary>
internal sealed record Script(
    string Name,
    IReadOnlyList<string> Variables,
    IReadOnlyList<ScriptAssignment> Assignments,
    IReadOnlyList<ScriptStatement> Statements,
    IReadOnlySet<string> Referenced)
{
    /// <summary>Built-in variables every script may use; the runner sets them (index 0 and 1).</summary>
    public const string Scale = "scale";

    public const string ClientId = "client_id";

    public const int ScaleIndex = 0;

    public const int ClientIdIndex = 1;

    public bool Uses(string variable) => Referenced.Contains(variable);
}
