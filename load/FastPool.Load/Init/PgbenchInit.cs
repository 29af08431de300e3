using System.Globalization;
using FastPool.Load.Cli;
using FastPool.Load.Run;
using Npgsql;

namespace FastPool.Load.Init;

/// <summary>
/// <c>fastpool-load init</c>: creates pgbench's four tables with the layout and data of <c>pgbench -i -s N</c>
/// (server-side generation, like <c>-I dtGvp</c>), so the built-in scenarios and pgbench itself can use them.
/// </summary>
internal static class PgbenchInit
{
    public static async Task RunAsync(TargetSpec target, int scale, TextWriter log, CancellationToken ct)
    {
        var s = scale.ToString(CultureInfo.InvariantCulture);
        string[] steps =
        [
            "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
            "CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22))",
            "CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100)",
            "CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor = 100)",
            "CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88)) WITH (fillfactor = 100)",
            $"INSERT INTO pgbench_branches (bid, bbalance) SELECT bid, 0 FROM generate_series(1, {s}) AS bid",
            $"INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT tid, (tid - 1) / 10 + 1, 0 FROM generate_series(1, 10 * {s}) AS tid",
            $"INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT aid, (aid - 1) / 100000 + 1, 0, '' FROM generate_series(1, 100000 * {s}) AS aid",
            "ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid)",
            "ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid)",
            "ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)",
            "VACUUM ANALYZE pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history",
        ];

        NpgsqlConnection connection;
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(target.ConnectionString) { Pooling = false, CommandTimeout = 0 };
            connection = new NpgsqlConnection(builder.ConnectionString);
            await connection.OpenAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or ArgumentException)
        {
            throw new UsageException($"target '{target.Name}' ({target.Describe()}): cannot connect: {Preflight.Describe(ex)}", ex);
        }

        await using (connection.ConfigureAwait(false))
        {
            foreach (var sql in steps)
            {
                await using var command = new NpgsqlCommand(sql, connection);
                try
                {
                    await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }
                catch (PostgresException ex)
                {
                    throw new UsageException($"target '{target.Name}': init failed: {ex.SqlState}: {ex.MessageText}", ex);
                }
            }
        }

        await log.WriteLineAsync($"{target.Name}: pgbench tables created, scale {s} ({(100_000L * scale).ToString("N0", CultureInfo.InvariantCulture)} accounts)").ConfigureAwait(false);
    }
}
