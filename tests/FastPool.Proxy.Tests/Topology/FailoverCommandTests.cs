using FastPool.Proxy.Configuration;
using FastPool.Proxy.Topology;

namespace FastPool.Proxy.Tests.Topology;

/// <summary>failover_command placeholders, as Pgpool-II documents them.</summary>
public class FailoverCommandTests
{
    [Fact]
    public void Every_placeholder_is_filled_in()
    {
        var failed = new Node(0, new NodeEndpoint("db-a", 5432), NodeRole.Primary);
        var promoted = new Node(1, new NodeEndpoint("db-b", 5433), NodeRole.Standby);
        var values = new FailoverCommandValues(failed, "/data/a", promoted, "/data/b", failed);

        var text = FailoverCommand.Format("d=%d h=%h p=%p D=%D m=%m H=%H r=%r R=%R P=%P %% %x %", values);

        Assert.Equal("d=0 h=db-a p=5432 D=/data/a m=1 H=db-b r=5433 R=/data/b P=0 % %x %", text);
    }

    [Fact]
    public void A_missing_node_is_minus_one_and_missing_values_are_empty()
    {
        var failed = new Node(2, new NodeEndpoint("db-c", 5434), NodeRole.Standby);

        var text = FailoverCommand.Format("[%m][%H][%r][%D][%R]", new FailoverCommandValues(failed, null, null, null, null));

        Assert.Equal("[-1][][][][]", text);
    }
}
