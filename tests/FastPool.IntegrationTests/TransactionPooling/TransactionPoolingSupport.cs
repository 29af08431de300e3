using System.Text;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using FastPool.Sandbox;
using Npgsql;

namespace FastPool.IntegrationTests.TransactionPooling;

internal static class TransactionPoolingSupport
{
    /// <summary>A proxy in <paramref name="mode"/> with a pool so small that clients really share servers.</summary>
    public static ProxyHost Start(PgCluster backend, PoolMode mode = PoolMode.Transaction, int poolSize = 1, Func<ProxyConfig, ProxyConfig>? configure = null) =>
        ProxyHost.Start(backend, c =>
        {
            c = c with { PoolMode = mode, DefaultPoolSize = poolSize, QueryWaitTimeout = TimeSpan.FromSeconds(30) };
            return configure is null ? c : configure(c);
        });

    public static async Task<NpgsqlConnection> OpenAsync(ProxyHost proxy, Action<NpgsqlConnectionStringBuilder>? configure = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(proxy.ConnectionString());
        configure?.Invoke(builder);
        var conn = new NpgsqlConnection(builder.ConnectionString);
        await conn.OpenAsync();
        return conn;
    }

    /// <summary>One row of text columns.</summary>
    public static async Task<string[]> RowAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), $"no row from: {sql}");
        var row = new string[reader.FieldCount];
        for (int i = 0; i < row.Length; i++)
        {
            row[i] = Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)!;
        }

        return row;
    }

    // ---- extended-protocol messages for RawPgClient (55.7) ----------------------------------------

    public static byte[] Parse(string sql) => RawPgClient.Message('P', [0, .. Encoding.UTF8.GetBytes(sql), 0, 0, 0]);

    public static byte[] Bind() => RawPgClient.Message('B', [0, 0, 0, 0, 0, 0, 0, 0]);

    public static byte[] Execute() => RawPgClient.Message('E', [0, 0, 0, 0, 0]);

    public static byte[] Sync() => RawPgClient.Message('S', []);

    /// <summary>Parse/Bind/Execute/Sync of one unnamed statement.</summary>
    public static byte[] ExtendedQuery(string sql) => [.. Parse(sql), .. Bind(), .. Execute(), .. Sync()];
}
