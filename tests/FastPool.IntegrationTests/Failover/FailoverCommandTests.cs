using System.Globalization;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Failover.FailoverChecks;

namespace FastPool.IntegrationTests.Failover;

/// <summary>failover = command: FastPool runs the operator's script with Pgpool-II's placeholders and takes the node it promoted.</summary>
[Collection(PostgresCollection.Name)]
public sealed class FailoverCommandTests
{
    [Fact]
    public async Task FailoverCommand_GetsThePlaceholders_AndTheNodeItPromotesTakesTheWrites()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        var output = Path.Combine(cluster.Primary.BaseDirectory, "failover-args.txt");
        string command = $"echo \"%d %h %p %D %m %H %r %R %P %%\" > {output}; psql -X -h %H -p %r -U postgres -d postgres -Atc 'SELECT pg_promote()'";
        await using var proxy = cluster.StartProxy(c => c with
        {
            FastPool = c.FastPool with
            {
                Failover = FailoverCluster.FastHealthChecks with
                {
                    Mode = FailoverMode.Command,
                    FailoverCommand = command,
                    DataDirectories = ["/data/zero", "/data/one"],
                },
            },
        });
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");
        await using var idle = new NpgsqlConnection(proxy.ConnectionString("app"));
        await idle.OpenAsync();
        Assert.Equal(cluster.Primary.Port, await ServerPortAsync(idle));

        await cluster.Primary.KillAsync();
        await WaitForNodeAsync(proxy, 1, "primary", "up");

        string P(int port) => port.ToString(CultureInfo.InvariantCulture);
        Assert.Equal(
            $"0 127.0.0.1 {P(cluster.Primary.Port)} /data/zero 1 127.0.0.1 {P(cluster.Standby.Port)} /data/one 0 %",
            (await File.ReadAllTextAsync(output)).Trim());
        Assert.Contains(proxy.Logs, l => l.Contains("failover_command", StringComparison.Ordinal) && l.Contains("exited with 0", StringComparison.Ordinal));

        // The client that was idle carries on, on the node the script promoted.
        Assert.Equal(cluster.Standby.Port, await ServerPortAsync(idle));
        await using var create = new NpgsqlCommand("CREATE TABLE after_failover (v int)", idle);
        await create.ExecuteNonQueryAsync();
    }

    /// <summary>Two standbys: one is promoted, follow_primary_command is run for the other with the new primary's address.</summary>
    [Fact]
    public async Task FollowPrimaryCommand_RunsForTheStandbyThatWasNotPromoted()
    {
        await using var cluster = await FailoverCluster.StartAsync(synchronous: false);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var second = await cluster.Primary.AddStandbyAsync(cts.Token);
        var output = Path.Combine(cluster.Primary.BaseDirectory, "follow-args.txt");
        await using var proxy = cluster.StartProxy(c => c with
        {
            Databases =
            [
                FailoverCluster.Entry(cluster.Primary, cluster.Standby) with
                {
                    Nodes = [.. FailoverCluster.Entry(cluster.Primary, cluster.Standby).Nodes, new NodeEndpoint(second.Host, second.Port)],
                },
            ],
            FastPool = c.FastPool with
            {
                Failover = FailoverCluster.FastHealthChecks with { FollowPrimaryCommand = $"echo \"%d %H %r %P\" >> {output}" },
            },
        });
        await WaitForNodeAsync(proxy, 0, "primary", "up");
        await WaitForNodeAsync(proxy, 1, "standby", "up");
        await WaitForNodeAsync(proxy, 2, "standby", "up");

        await cluster.Primary.KillAsync();
        var nodes = await WaitForNodeAsync(proxy, 1, "primary", "up");
        Assert.Equal("standby", nodes.Value(Row(nodes, 2), "role"));

        await Resilience.Wait.UntilAsync(() => Task.FromResult(File.Exists(output)), TimeSpan.FromSeconds(20), "follow_primary_command ran");
        Assert.Equal($"2 127.0.0.1 {cluster.Standby.Port.ToString(CultureInfo.InvariantCulture)} 0", (await File.ReadAllTextAsync(output)).Trim());
    }
}
