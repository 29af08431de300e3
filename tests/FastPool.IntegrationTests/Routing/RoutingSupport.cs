using System.Globalization;
using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using FastPool.Sandbox;
using Npgsql;
using static FastPool.IntegrationTests.Admin.AdminSupport;

namespace FastPool.IntegrationTests.Routing;

/// <summary>Proxies in front of a primary and its standbys, in transaction pooling, and what routing tests check through them.</summary>
internal static class RoutingSupport
{
    public const string Database = "rw";

    /// <summary>A proxy whose entry "rw" lists <paramref name="nodes"/> (<paramref name="dbName"/> on each), transaction pooling.</summary>
    public static ProxyHost StartProxy(PgCluster primary, IEnumerable<PgCluster> nodes, Func<RoutingSettings, RoutingSettings>? routing = null, PoolMode mode = PoolMode.Transaction, TimeSpan? srCheckPeriod = null, string dbName = "postgres", Func<ProxyConfig, ProxyConfig>? configure = null)
    {
        var entry = new DatabaseConfig
        {
            Name = Database,
            DbName = dbName,
            Nodes = [.. nodes.Select(n => new NodeEndpoint(n.Host, n.Port))],
        };
        return AdminSupport.StartProxy(primary, c => (configure ?? (x => x))(c with
        {
            Databases = [entry],
            PoolMode = mode,
            ServerConnectTimeout = TimeSpan.FromSeconds(3),
            FastPool = c.FastPool with
            {
                SrCheckPeriod = srCheckPeriod ?? TimeSpan.FromMilliseconds(200),
                Routing = routing is null ? new RoutingSettings() : routing(new RoutingSettings()),
            },
        }));
    }

    /// <summary>Waits until every node's role is detected and the standbys listed take reads (load_balance_node).</summary>
    public static async Task<ConsoleTable> WaitForBalancingAsync(ProxyHost host, params int[] standbyIds)
    {
        ConsoleTable? nodes = null;
        await Wait.UntilAsync(
            async () =>
            {
                nodes = await ShowAsync(host.Port, "SHOW POOL_NODES");
                var rows = nodes.Where("database", Database);
                return rows.All(r => nodes.Value(r, "role") != "unknown")
                    && standbyIds.All(id => nodes.Value(NodeRow(nodes, id), "load_balance_node") == "true");
            },
            TimeSpan.FromSeconds(30),
            "roles detected and standbys taking reads");
        return nodes!;
    }

    public static string[] NodeRow(ConsoleTable nodes, int id) =>
        Assert.Single(nodes.Where("database", Database), r => nodes.Value(r, "node_id") == id.ToString(CultureInfo.InvariantCulture));

    public static async Task<long> SelectCountAsync(ProxyHost host, int nodeId)
    {
        var nodes = await ShowAsync(host.Port, "SHOW POOL_NODES");
        return long.Parse(nodes.Value(NodeRow(nodes, nodeId), "select_cnt"), CultureInfo.InvariantCulture);
    }

    public static async Task<NpgsqlConnection> OpenAsync(ProxyHost host) => await host.OpenAsync(Database);

    /// <summary>Runs <paramref name="sql"/> and returns its first column, which routing tests make pg_is_in_recovery().</summary>
    public static async Task<bool> OnStandbyAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (bool)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>
    /// Whether a read the classifier lets go to a standby gets there within a few tries. A loaded machine can make a
    /// replication check late or the standby lag behind other tests' writes for a moment, and then a read rightly
    /// goes to the primary instead; a read classified as a write never reaches the standby however often it is sent.
    /// </summary>
    public static async Task<bool> ReachesStandbyAsync(NpgsqlConnection conn, string sql)
    {
        for (int attempt = 0; attempt < 20; attempt++)
        {
            if (await OnStandbyAsync(conn, sql))
            {
                return true;
            }

            await Task.Delay(150);
        }

        return false;
    }

    public static Task ExecAsync(NpgsqlConnection conn, string sql) => ProtocolTestSupport.ExecAsync(conn, sql);

    /// <summary>Runs DDL on the primary and waits until the standby has replayed it (the object exists there).</summary>
    public static async Task CreateOnPrimaryAsync(PgCluster primary, PgCluster standby, string ddl, string objectName)
    {
        await primary.PsqlAsync(ddl);
        await Wait.UntilAsync(
            async () => await standby.PsqlAsync($"select to_regclass('{objectName}') is not null or exists (select from pg_proc where proname = '{objectName}')") == "t",
            TimeSpan.FromSeconds(30),
            $"{objectName} replicated to {standby.Name}");
    }

    /// <summary>A standby of <paramref name="primary"/> that only this test uses (it may be delayed or stopped).</summary>
    public static async Task<PgCluster> AddOwnStandbyAsync(PgCluster primary)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        return await primary.AddStandbyAsync(cts.Token);
    }
}
