using System.Globalization;
using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using FastPool.Sandbox;
using Npgsql;

namespace FastPool.IntegrationTests.Failover;

/// <summary>
/// A primary and one streaming standby of a failover test's own (tests kill them), optionally with the
/// standby synchronous: synchronous_standby_names is set only once the standby streams, and
/// synchronous_commit is on, so an acknowledged commit is on the standby's disk.
/// </summary>
internal sealed class FailoverCluster : IAsyncDisposable
{
    private FailoverCluster(PgCluster primary, PgCluster standby)
    {
        Primary = primary;
        Standby = standby;
    }

    public PgCluster Primary { get; }

    public PgCluster Standby { get; }

    public static async Task<FailoverCluster> StartAsync(bool synchronous)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var directory = Directory.CreateTempSubdirectory("fastpool-fo-").FullName;
        var options = new PgClusterOptions
        {
            MaxConnections = 60,
            Settings = new Dictionary<string, string> { ["synchronous_commit"] = "on" },
        };
        var primary = await PgCluster.StartPrimaryAsync(directory, options, cts.Token);
        try
        {
            var standby = await primary.AddStandbyAsync(cts.Token);
            if (synchronous)
            {
                await primary.PsqlAsync($"ALTER SYSTEM SET synchronous_standby_names = '{standby.Name}'", ct: cts.Token);
                await primary.PsqlAsync("SELECT pg_reload_conf()", ct: cts.Token);
                await Wait.UntilAsync(
                    async () => await primary.PsqlAsync("SELECT sync_state FROM pg_stat_replication", ct: cts.Token) == "sync",
                    TimeSpan.FromSeconds(30),
                    "the standby is synchronous");
            }

            return new FailoverCluster(primary, standby);
        }
        catch
        {
            await primary.DisposeAsync();
            throw;
        }
    }

    /// <summary>A FastPool in front of both servers: one entry "app" listing the primary first, quick health checks.</summary>
    public ProxyHost StartProxy(Func<ProxyConfig, ProxyConfig>? configure = null) =>
        AdminSupport.StartProxy(Primary, c =>
        {
            c = c with
            {
                PoolMode = PoolMode.Transaction,
                DefaultPoolSize = 10,
                ServerConnectTimeout = TimeSpan.FromSeconds(3),
                Databases = [Entry(Primary, Standby)],
                // Reads are not balanced here: these tests use a read (the serving port, SELECT 1) to stand for
                // "what the primary answers", and routing has its own tests of reads during a standby's loss.
                FastPool = c.FastPool with
                {
                    SrCheckPeriod = TimeSpan.FromSeconds(1),
                    Failover = FastHealthChecks,
                    Routing = c.FastPool.Routing with { LoadBalanceMode = false },
                },
            };
            return configure is null ? c : configure(c);
        });

    public static FailoverSettings FastHealthChecks { get; } = new()
    {
        HealthCheckPeriod = TimeSpan.FromSeconds(1),
        HealthCheckTimeout = TimeSpan.FromSeconds(2),
        HealthCheckMaxRetries = 2,
        HealthCheckRetryDelay = TimeSpan.FromMilliseconds(300),
        FailoverWaitTimeout = TimeSpan.FromSeconds(30),
    };

    public static DatabaseConfig Entry(PgCluster first, PgCluster second) => Entry("app", first, second);

    /// <summary>An entry <paramref name="name"/> (on the servers' postgres database) listing <paramref name="nodes"/> in this order.</summary>
    public static DatabaseConfig Entry(string name, params PgCluster[] nodes) => new()
    {
        Name = name,
        DbName = "postgres",
        Nodes = [.. nodes.Select(n => new NodeEndpoint(n.Host, n.Port))],
    };

    public ValueTask DisposeAsync() => Primary.DisposeAsync();
}

internal static class FailoverChecks
{
    /// <summary>Waits until SHOW POOL_NODES shows node <paramref name="id"/> of "app" with the role and status given.</summary>
    public static Task<ConsoleTable> WaitForNodeAsync(ProxyHost proxy, int id, string role, string status, TimeSpan? timeout = null) =>
        WaitForNodeAsync(proxy, "app", id, role, status, timeout);

    /// <summary>Waits until SHOW POOL_NODES shows node <paramref name="id"/> of <paramref name="database"/> with the role and status given.</summary>
    public static async Task<ConsoleTable> WaitForNodeAsync(ProxyHost proxy, string database, int id, string role, string status, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var nodes = await AdminSupport.ShowAsync(proxy.Port, "SHOW POOL_NODES");
            var row = Row(nodes, database, id);
            if (nodes.Value(row, "role") == role && nodes.Value(row, "status") == status)
            {
                return nodes;
            }

            // The proxy's log says why the node is not there yet; without it a failure here is a riddle.
            Assert.True(sw.Elapsed < limit, $"timed out after {limit.TotalSeconds:0} s waiting for node {id} of {database} shown as {role}, {status}:\n{nodes}\n{string.Join('\n', proxy.Logs)}");
            await Task.Delay(50);
        }
    }

    public static string[] Row(ConsoleTable nodes, int id) => Row(nodes, "app", id);

    public static string[] Row(ConsoleTable nodes, string database, int id) =>
        Assert.Single(nodes.Where("database", database), r => nodes.Value(r, "node_id") == id.ToString(CultureInfo.InvariantCulture));

    /// <summary>The port of the server that answered, as the server itself reports it.</summary>
    public static async Task<int> ServerPortAsync(NpgsqlConnection conn)
    {
        await using var cmd = new NpgsqlCommand("SELECT current_setting('port')::int", conn);
        return (int)(await cmd.ExecuteScalarAsync())!;
    }
}
