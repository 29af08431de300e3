using FastPool.Proxy.Configuration;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Tests.Transport;

public sealed class OpenFileLimitTests
{
    [Fact]
    public void Expected_use_is_every_client_and_every_full_pool_per_transport()
    {
        var config = new ProxyConfig
        {
            MaxClientConn = 10_000,
            DefaultPoolSize = 20,
            ReservePoolSize = 5,
            Databases =
            [
                new DatabaseConfig { Name = "app" },
                new DatabaseConfig { Name = "big", PoolSize = 50, Nodes = [new("10.0.0.1", 5432), new("10.0.0.2", 5432)] },
                new DatabaseConfig { Name = "capped", MaxDbConnections = 3 },
            ],
        };

        // Servers: app 20+5, big (50+5) on two nodes, capped 3; plus 100 for listeners, logs and the loops.
        Assert.Equal(10_000 + 25 + 110 + 3 + 100, OpenFileLimit.Expected(config, descriptorsPerConnection: 1));
        Assert.Equal((2 * (10_000 + 25 + 110 + 3)) + 100, OpenFileLimit.Expected(config, descriptorsPerConnection: 2));
    }

    [Fact]
    public void A_limit_already_high_enough_is_left_as_it_is()
    {
        var (soft, hard) = OpenFileLimit.Raise(10);

        Assert.True(soft >= 10);
        Assert.True(hard >= soft);
    }
}
