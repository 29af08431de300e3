using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using FastPool.Sandbox;
using Npgsql;

namespace FastPool.IntegrationTests.Cache;

internal static class CacheSupport
{
    /// <summary>A transaction-pooling proxy with the result cache on and one server connection per pool.</summary>
    public static ProxyHost Start(PgCluster backend, Func<CacheSettings, CacheSettings>? cache = null, PoolMode mode = PoolMode.Transaction, TimeSpan? queryWait = null, int poolSize = 1) =>
        ProxyHost.Start(backend, c =>
        {
            var settings = new CacheSettings { Enabled = true };
            return c with
            {
                PoolMode = mode,
                DefaultPoolSize = poolSize,
                QueryWaitTimeout = queryWait ?? TimeSpan.FromSeconds(30),
                FastPool = c.FastPool with { Cache = cache is null ? settings : cache(settings) },
            };
        });

    public static async Task<NpgsqlConnection> OpenAsync(ProxyHost proxy, string database = "postgres", string user = "postgres", string? password = null)
    {
        var conn = new NpgsqlConnection(proxy.ConnectionString(database, user, password));
        await conn.OpenAsync();
        return conn;
    }

    public static async Task<string> ScalarAsync(NpgsqlConnection conn, string sql, params object[] parameters)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        var value = await cmd.ExecuteScalarAsync();
        return Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "<null>";
    }

    public static async Task ExecAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>Runs statements directly on the server (not through FastPool), as the superuser.</summary>
    public static async Task DirectAsync(PostgresFixture fixture, string sql, string database = "postgres")
    {
        await using var conn = new NpgsqlConnection(fixture.SuperuserConnectionString(database));
        await conn.OpenAsync();
        await ExecAsync(conn, sql);
    }
}
