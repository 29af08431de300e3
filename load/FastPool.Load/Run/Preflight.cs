using FastPool.Load.Cli;
using FastPool.Load.Scenarios;
using Npgsql;

namespace FastPool.Load.Run;

/// <summary>
/// Checks each target before any load: it accepts a connection, has the pgbench tables when the scenario
/// needs :scale, and (for a custom script) parses every statement. Failures become one-line UsageExceptions.
/// </summary>
internal static class Preflight
{
    /// <summary>Returns the scale to use for this target (--scale, or pgbench's way: rows in pgbench_branches).</summary>
    public static async Task<long> CheckAsync(TargetRun target, RunSettings settings, CancellationToken ct)
    {
        NpgsqlConnection connection;
        try
        {
            connection = await target.DataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or ArgumentException)
        {
            throw new UsageException($"target '{target.Spec.Name}' ({target.Spec.Describe()}): cannot connect: {Describe(ex)}", ex);
        }

        await using (connection.ConfigureAwait(false))
        {
            var scale = settings.Scale ?? 1;
            if (settings.Scale is null && settings.Scenario.UsesScale)
            {
                scale = await ReadScaleAsync(target, connection, ct).ConfigureAwait(false);
            }

            if (settings.Scenario.IsCustom)
            {
                await ValidateScriptAsync(settings.Scenario, connection, ct).ConfigureAwait(false);
            }

            return scale;
        }
    }

    /// <summary>The exception's message and its inner ones ("Failed to connect to ...: Connection refused").</summary>
    public static string Describe(Exception ex)
    {
        var message = ex.Message;
        for (var inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (!message.Contains(inner.Message, StringComparison.Ordinal))
            {
                message += ": " + inner.Message;
            }
        }

        return message.ReplaceLineEndings(" ");
    }

    private static async Task<long> ReadScaleAsync(TargetRun target, NpgsqlConnection connection, CancellationToken ct)
    {
        try
        {
            await using var command = new NpgsqlCommand("SELECT count(*) FROM pgbench_branches", connection);
            var scale = (long)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false) ?? 0L);
            return scale > 0
                ? scale
                : throw new UsageException($"target '{target.Spec.Name}': pgbench_branches is empty; run fastpool-load init (or pgbench -i) first.");
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            throw new UsageException(
                $"target '{target.Spec.Name}': the pgbench tables are missing; run `fastpool-load init --target {target.Spec.Name}=... --scale N` (or pgbench -i) first.",
                ex);
        }
    }

    // Parse (and Describe) without executing: a syntax error is reported with the script line; other errors
    // (e.g. a table the script itself creates) are left for the run to count.
    private static async Task ValidateScriptAsync(Scenario scenario, NpgsqlConnection connection, CancellationToken ct)
    {
        foreach (var weighted in scenario.Scripts)
        {
            foreach (var statement in weighted.Script.Statements)
            {
                await using var command = ScriptClient.CreateCommand(statement, connection, StatementMode.Extended);
                try
                {
                    await command.PrepareAsync(ct).ConfigureAwait(false);
                    await command.UnprepareAsync(ct).ConfigureAwait(false);
                }
                catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.SyntaxError)
                {
                    throw new ScriptException(weighted.Script.Name, statement.Line, $"{ex.MessageText} ({ex.SqlState})");
                }
                catch (PostgresException)
                {
                }
            }
        }
    }
}
