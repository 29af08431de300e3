using FastPool.IntegrationTests.Admin;
using FastPool.IntegrationTests.Infrastructure;
using static FastPool.IntegrationTests.Failover.FailoverChecks;

namespace FastPool.IntegrationTests.Failover;

/// <summary>
/// A multi-node entry whose checks cannot log in still serves, as it did before health checks existed: node 0
/// takes the writes, unconfirmed (so never failed over from), and the log and SHOW POOL_NODES say what to set.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class UncheckableNodeTests
{
    private readonly PostgresFixture _fixture;

    public UncheckableNodeTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task ChecksThatCannotLogIn_LeaveNode0ServingAsBefore()
    {
        var standby = await _fixture.GetStandbyAsync();
        await using var proxy = AdminSupport.StartProxy(_fixture.Primary, c => c with
        {
            Databases = [FailoverCluster.Entry(_fixture.Primary, standby)],
            FastPool = c.FastPool with
            {
                SrCheckUser = "no_such_role",
                Failover = FailoverCluster.FastHealthChecks with { HealthCheckUser = "no_such_role" },
            },
        });

        await using var conn = await proxy.OpenAsync("app");
        Assert.Equal(_fixture.Primary.Port, await ServerPortAsync(conn));
        var nodes = await AdminSupport.ShowAsync(proxy.Port, "SHOW POOL_NODES");
        Assert.Contains("cannot log in", nodes.Value(Row(nodes, 0), "last_change_reason"), StringComparison.Ordinal);
        Assert.Contains(proxy.Logs, l => l.Contains("health_check_user", StringComparison.Ordinal));
    }
}
