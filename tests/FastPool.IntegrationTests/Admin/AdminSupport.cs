using System.Diagnostics;
using System.Globalization;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Sandbox;

namespace FastPool.IntegrationTests.Admin;

/// <summary>One result of a console command as psql printed it (unaligned, '|' separated, with its header).</summary>
internal sealed class ConsoleTable
{
    public ConsoleTable(string[] columns, List<string[]> rows)
    {
        Columns = columns;
        Rows = rows;
    }

    public string[] Columns { get; }

    public List<string[]> Rows { get; }

    public string Value(string[] row, string column)
    {
        int i = Array.IndexOf(Columns, column);
        Assert.True(i >= 0, $"no column {column} in {string.Join(',', Columns)}");
        return row[i];
    }

    public int Int(string[] row, string column) => int.Parse(Value(row, column), CultureInfo.InvariantCulture);

    /// <summary>The rows whose <paramref name="column"/> is <paramref name="value"/>.</summary>
    public List<string[]> Where(string column, string value) => Rows.Where(r => Value(r, column) == value).ToList();

    public string[] Single(string column, string value)
    {
        var rows = Where(column, value);
        Assert.True(rows.Count == 1, $"expected one row with {column}={value}, got {rows.Count}:\n{this}");
        return rows[0];
    }

    public override string ToString() => string.Join('|', Columns) + "\n" + string.Join('\n', Rows.Select(r => string.Join('|', r)));
}

/// <summary>Helpers for the admin console tests: a FastPool with admin and stats users, and psql against its console.</summary>
internal static class AdminSupport
{
    public const string Admin = "fp_admin";
    public const string Stats = "fp_stats";

    /// <summary>The usual test proxy (trust, fallback database to the shared server) with console users.</summary>
    public static ProxyHost StartProxy(PgCluster backend, Func<ProxyConfig, ProxyConfig>? configure = null) =>
        ProxyHost.Start(backend, c =>
        {
            c = c with { AdminUsers = [Admin], StatsUsers = [Stats] };
            return configure is null ? c : configure(c);
        });

    /// <summary>Runs one command on the console with psql, as an operator would; never throws for a failed command.</summary>
    public static Task<ToolResult> PsqlAsync(int port, string sql, string user = Admin, string database = "pgbouncer") =>
        ProtocolTestSupport.RunToolAsync(
            "psql",
            ["-X", "-A", "-F", "|", "-P", "footer=off", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture),
             "-U", user, "-d", database, "-c", sql],
            TimeSpan.FromSeconds(60));

    /// <summary>Runs a SHOW command (or any command returning rows) and parses its table; fails the test when psql fails.</summary>
    public static async Task<ConsoleTable> ShowAsync(int port, string sql, string user = Admin)
    {
        var result = await PsqlAsync(port, sql, user);
        Assert.True(result.ExitCode == 0, $"psql \"{sql}\" failed: {result}");
        var lines = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 1, $"no header from \"{sql}\": {result}");
        return new ConsoleTable(lines[0].Split('|'), lines.Skip(1).Select(l => l.Split('|')).ToList());
    }

    /// <summary>Runs a command that must succeed and returns psql's output (the command tag is not printed with -A).</summary>
    public static async Task<ToolResult> RunAsync(int port, string sql, string user = Admin)
    {
        var result = await PsqlAsync(port, sql, user);
        Assert.True(result.ExitCode == 0, $"psql \"{sql}\" failed: {result}");
        return result;
    }

    /// <summary>Polls until <paramref name="condition"/> holds (bounded, so a broken build fails instead of hanging).</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), "timed out waiting until " + what);
            await Task.Delay(50);
        }
    }
}
