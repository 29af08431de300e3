using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using static FastPool.IntegrationTests.Admin.AdminSupport;

namespace FastPool.IntegrationTests.Topology;

/// <summary>
/// Node roles are detected, not configured: a database entry that lists a standby first and the primary
/// second shows them as they really are in SHOW POOL_NODES, with the standby's replication delay.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class NodeRoleTests
{
    private readonly PostgresFixture _fixture;

    public NodeRoleTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task RolesAreDetected_InWhateverOrderTheEntryListsTheNodes()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        var entry = new DatabaseConfig
        {
            Name = "replicated",
            DbName = "postgres",
            Nodes = [new NodeEndpoint(standby.Host, standby.Port), new NodeEndpoint(primary.Host, primary.Port)],
        };
        await using var host = StartProxy(primary, c => c with
        {
            Databases = [entry],
            FastPool = c.FastPool with { SrCheckPeriod = TimeSpan.FromMilliseconds(200) },
        });

        ConsoleTable? nodes = null;
        await Wait.UntilAsync(
            async () =>
            {
                nodes = await ShowAsync(host.Port, "SHOW POOL_NODES");
                return nodes.Where("database", "replicated").All(r => nodes.Value(r, "role") != "unknown")
                    && nodes.Value(NodeRow(nodes, "replicated", 0), "role") == "standby";
            },
            TimeSpan.FromSeconds(20),
            "node roles detected");

        var first = NodeRow(nodes!, "replicated", 0);
        var second = NodeRow(nodes!, "replicated", 1);
        Assert.Equal("standby", nodes!.Value(first, "role"));
        Assert.Equal("primary", nodes.Value(second, "role"));
        Assert.Equal("up", nodes.Value(first, "status"));
        Assert.Equal(standby.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), nodes.Value(first, "port"));
        Assert.True(long.Parse(nodes.Value(first, "replication_delay"), System.Globalization.CultureInfo.InvariantCulture) >= 0);
        Assert.Equal(2, nodes.Where("database", "replicated").Count);
    }

    [Fact]
    public async Task UnreachableNode_IsShownDown_WithTheReason()
    {
        var primary = _fixture.Primary;
        int deadPort = FreePort();
        var entry = new DatabaseConfig
        {
            Name = "halfdead",
            DbName = "postgres",
            Nodes = [new NodeEndpoint(primary.Host, primary.Port), new NodeEndpoint("127.0.0.1", deadPort)],
        };
        await using var host = StartProxy(primary, c => c with
        {
            Databases = [entry],
            ServerConnectTimeout = TimeSpan.FromSeconds(2),
            FastPool = c.FastPool with { SrCheckPeriod = TimeSpan.FromMilliseconds(200) },
        });

        ConsoleTable? nodes = null;
        await Wait.UntilAsync(
            async () =>
            {
                nodes = await ShowAsync(host.Port, "SHOW POOL_NODES");
                // The live node's role too: it shows up before its first check has told its role (CI saw "unknown").
                return nodes.Value(NodeRow(nodes, "halfdead", 1), "status") == "down"
                    && nodes.Value(NodeRow(nodes, "halfdead", 0), "status") == "up"
                    && nodes.Value(NodeRow(nodes, "halfdead", 0), "role") != "unknown";
            },
            TimeSpan.FromSeconds(20),
            "the dead node shown down and the live one's role known");

        Assert.Contains("refused", nodes!.Value(NodeRow(nodes, "halfdead", 1), "last_change_reason"), StringComparison.OrdinalIgnoreCase);
        Assert.Equal("primary", nodes.Value(NodeRow(nodes, "halfdead", 0), "role"));

        // The live node keeps serving clients of the entry.
        Assert.Equal(42, await ProxyChecks.OpenAndScalarAsync(host, "halfdead", "postgres", "select 42"));
    }

    private static string[] NodeRow(ConsoleTable nodes, string database, int id) =>
        Assert.Single(nodes.Where("database", database), r => nodes.Value(r, "node_id") == id.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }
}
