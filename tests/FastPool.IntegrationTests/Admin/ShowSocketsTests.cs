using System.Globalization;
using System.Net.Sockets;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Admin.AdminSupport;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Admin;

/// <summary>SHOW SOCKETS and the prepared_statements column of SHOW CLIENTS / SHOW SERVERS, as an operator reads them.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ShowSocketsTests
{
    private readonly PostgresFixture _fixture;

    public ShowSocketsTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task ShowSockets_ListsClientsServersAndLogins_PreparedStatementsAreCounted()
    {
        await using var host = StartProxy(_fixture.Primary, c => c with { PoolMode = PoolMode.Transaction });
        var cs = new NpgsqlConnectionStringBuilder(host.ConnectionString()) { ApplicationName = "show-sockets-test" };
        await using var conn = new NpgsqlConnection(cs.ConnectionString);
        await conn.OpenAsync();

        // Two named protocol-level statements, kept by FastPool for the client; inside a transaction, so the
        // client holds its server while the console looks.
        await using var tx = await conn.BeginTransactionAsync();
        await using var first = new NpgsqlCommand("select 1", conn, tx);
        await first.PrepareAsync();
        await using var second = new NpgsqlCommand("select 2", conn, tx);
        await second.PrepareAsync();
        Assert.Equal(2, await second.ExecuteScalarAsync());
        int backendPid = await ScalarAsync<int>(conn, "select pg_backend_pid()");

        // A client that connected and has not sent its startup packet yet.
        using var loggingIn = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await loggingIn.ConnectAsync("127.0.0.1", host.Port);
        string loginPort = ((System.Net.IPEndPoint)loggingIn.LocalEndPoint!).Port.ToString(CultureInfo.InvariantCulture);

        var clients = await ShowAsync(host.Port, "SHOW CLIENTS");
        var me = clients.Single("application_name", "show-sockets-test");
        Assert.Equal(2, clients.Int(me, "prepared_statements"));
        Assert.Empty(clients.Where("port", loginPort));

        var servers = await ShowAsync(host.Port, "SHOW SERVERS");
        var mine = servers.Single("remote_pid", backendPid.ToString(CultureInfo.InvariantCulture));
        Assert.True(servers.Int(mine, "prepared_statements") >= 2, servers.ToString());

        await WaitUntilAsync(async () => (await ShowAsync(host.Port, "SHOW SOCKETS")).Where("port", loginPort).Count == 1, "the new connection is listed");
        var sockets = await ShowAsync(host.Port, "SHOW SOCKETS");
        var client = sockets.Single("ptr", clients.Value(me, "ptr"));
        Assert.Equal("C", sockets.Value(client, "type"));
        Assert.Equal("cl_active", sockets.Value(client, "state"));
        Assert.Equal("postgres", sockets.Value(client, "database"));
        Assert.Equal(2, sockets.Int(client, "prepared_statements"));
        Assert.Equal(0, sockets.Int(client, "pkt_remain"));

        var server = sockets.Single("remote_pid", backendPid.ToString(CultureInfo.InvariantCulture));
        Assert.Equal("S", sockets.Value(server, "type"));
        Assert.Equal("sv_active", sockets.Value(server, "state"));
        Assert.Equal(clients.Value(me, "ptr"), sockets.Value(server, "link"));

        var login = sockets.Single("port", loginPort);
        Assert.Equal("cl_login", sockets.Value(login, "state"));
        Assert.Equal("(nouser)", sockets.Value(login, "user"));
        Assert.Equal("(nodb)", sockets.Value(login, "database"));

        // The console's own connection is a client too.
        Assert.Single(sockets.Where("database", "pgbouncer"));

        // Nothing is under way on any socket now: ACTIVE_SOCKETS lists sockets with bytes waiting, so none of these.
        var active = await ShowAsync(host.Port, "SHOW ACTIVE_SOCKETS");
        Assert.Empty(active.Where("ptr", clients.Value(me, "ptr")));

        await tx.CommitAsync();
        await WaitUntilAsync(async () =>
        {
            var s = await ShowAsync(host.Port, "SHOW SOCKETS");
            var rows = s.Where("remote_pid", backendPid.ToString(CultureInfo.InvariantCulture));
            return rows.Count == 1 && s.Value(rows[0], "state") == "sv_idle";
        }, "the server is back in the pool after the transaction");
    }
}
