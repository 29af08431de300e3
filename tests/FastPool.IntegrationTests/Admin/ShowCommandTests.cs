using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Admin.AdminSupport;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Admin;

/// <summary>The console's SHOW commands through psql: PgBouncer 1.18's columns, and values that match what clients did.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ShowCommandTests
{
    private readonly PostgresFixture _fixture;

    public ShowCommandTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Theory]
    [InlineData("SHOW POOLS", "database,user,cl_active,cl_waiting,cl_active_cancel_req,cl_waiting_cancel_req,sv_active,sv_active_cancel,sv_being_canceled,sv_idle,sv_used,sv_tested,sv_login,maxwait,maxwait_us,pool_mode")]
    [InlineData("SHOW DATABASES", "name,host,port,database,force_user,pool_size,min_pool_size,reserve_pool,pool_mode,max_connections,current_connections,paused,disabled")]
    [InlineData("SHOW CLIENTS", "type,user,database,state,addr,port,local_addr,local_port,connect_time,request_time,wait,wait_us,close_needed,ptr,link,remote_pid,tls,application_name,prepared_statements,id")]
    [InlineData("SHOW SERVERS", "type,user,database,state,addr,port,local_addr,local_port,connect_time,request_time,wait,wait_us,close_needed,ptr,link,remote_pid,tls,application_name,prepared_statements,id")]
    [InlineData("SHOW SOCKETS", "type,user,database,state,addr,port,local_addr,local_port,connect_time,request_time,wait,wait_us,close_needed,ptr,link,remote_pid,tls,application_name,prepared_statements,id,pkt_remain,recv_queue,send_queue")]
    [InlineData("SHOW ACTIVE_SOCKETS", "type,user,database,state,addr,port,local_addr,local_port,connect_time,request_time,wait,wait_us,close_needed,ptr,link,remote_pid,tls,application_name,prepared_statements,id,pkt_remain,recv_queue,send_queue")]
    [InlineData("SHOW STATS", "database,total_xact_count,total_query_count,total_received,total_sent,total_xact_time,total_query_time,total_wait_time,avg_xact_count,avg_query_count,avg_recv,avg_sent,avg_xact_time,avg_query_time,avg_wait_time")]
    [InlineData("SHOW STATS_TOTALS", "database,xact_count,query_count,bytes_received,bytes_sent,xact_time,query_time,wait_time")]
    [InlineData("SHOW STATS_AVERAGES", "database,xact_count,query_count,bytes_received,bytes_sent,xact_time,query_time,wait_time")]
    [InlineData("SHOW CONFIG", "key,value,default,changeable")]
    [InlineData("SHOW USERS", "name,pool_mode")]
    [InlineData("SHOW LISTS", "list,items")]
    [InlineData("SHOW STATE", "key,value")]
    [InlineData("SHOW MEM", "name,size,used,free,memtotal")]
    [InlineData("SHOW VERSION", "version")]
    [InlineData("SHOW TOTALS", "name,value")]
    [InlineData("SHOW DNS_HOSTS", "hostname,ttl,addrs")]
    [InlineData("SHOW DNS_ZONES", "zonename,serial,count")]
    public async Task EveryShowCommand_HasPgBouncersColumns(string command, string columns)
    {
        await using var host = StartProxy(_fixture.Primary);
        var table = await ShowAsync(host.Port, command);
        Assert.Equal(columns, string.Join(',', table.Columns));
    }

    [Fact]
    public async Task ShowTotals_has_PgBouncers_rows_and_counts_the_queries()
    {
        await using var host = StartProxy(_fixture.Primary);
        await using (var conn = await host.OpenAsync())
        {
            for (int i = 0; i < 5; i++)
            {
                Assert.Equal(1, await ScalarAsync<int>(conn, "select 1"));
            }
        }

        var totals = await ShowAsync(host.Port, "SHOW TOTALS");
        Assert.Equal(
            "total_xact_count,total_query_count,total_client_bytes,total_server_bytes,total_xact_time,total_query_time,total_wait_time,"
            + "avg_xact_count,avg_query_count,avg_client_bytes,avg_server_bytes,avg_xact_time,avg_query_time,avg_wait_time",
            string.Join(',', totals.Rows.Select(r => r[0])));
        Assert.True(long.Parse(totals.Value(totals.Single("name", "total_query_count"), "value"), System.Globalization.CultureInfo.InvariantCulture) >= 5);
        Assert.True(long.Parse(totals.Value(totals.Single("name", "total_client_bytes"), "value"), System.Globalization.CultureInfo.InvariantCulture) > 0);
    }

    [Fact]
    public async Task ShowPools_CountsActiveClientsAndServers()
    {
        await using var host = StartProxy(_fixture.Primary);
        var clients = new List<NpgsqlConnection>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var conn = await host.OpenAsync();
                Assert.Equal(1, await ScalarAsync<int>(conn, "select 1"));
                clients.Add(conn);
            }

            var pools = await ShowAsync(host.Port, "SHOW POOLS");
            var row = pools.Single("database", "postgres");
            Assert.Equal("postgres", pools.Value(row, "user"));
            Assert.Equal(3, pools.Int(row, "cl_active"));
            Assert.Equal(0, pools.Int(row, "cl_waiting"));
            Assert.Equal(3, pools.Int(row, "sv_active"));
            Assert.Equal("session", pools.Value(row, "pool_mode"));

            // The console's own client shows up as PgBouncer's does.
            Assert.Equal(1, pools.Int(pools.Single("database", "pgbouncer"), "cl_active"));
        }
        finally
        {
            foreach (var c in clients)
            {
                await c.DisposeAsync();
            }
        }

        // Once the clients are gone their servers are idle in the pool.
        await WaitUntilAsync(async () =>
        {
            var pools = await ShowAsync(host.Port, "SHOW POOLS");
            var row = pools.Single("database", "postgres");
            return pools.Int(row, "cl_active") == 0 && pools.Int(row, "sv_active") == 0 && pools.Int(row, "sv_idle") == 3;
        }, "the servers are idle");
    }

    [Fact]
    public async Task ShowDatabases_ListsAConfiguredEntry()
    {
        var entry = new DatabaseConfig
        {
            Name = "orders",
            DbName = PostgresFixture.AppDatabase,
            Nodes = [new NodeEndpoint(_fixture.Primary.Host, _fixture.Primary.Port)],
            PoolSize = 7,
        };
        await using var host = StartProxy(_fixture.Primary, c => c with { Databases = [entry] });
        var dbs = await ShowAsync(host.Port, "show databases;");
        var row = dbs.Single("name", "orders");
        Assert.Equal(PostgresFixture.AppDatabase, dbs.Value(row, "database"));
        Assert.Equal(_fixture.Primary.Port, dbs.Int(row, "port"));
        Assert.Equal(7, dbs.Int(row, "pool_size"));
        Assert.Equal(0, dbs.Int(row, "paused"));
        Assert.Equal(0, dbs.Int(row, "disabled"));
        Assert.Single(dbs.Where("name", "pgbouncer"));
    }

    [Fact]
    public async Task ShowClientsAndServers_ShowEachClientAndTheServerItHolds()
    {
        await using var host = StartProxy(_fixture.Primary);
        var cs = new NpgsqlConnectionStringBuilder(host.ConnectionString()) { ApplicationName = "show-clients-test" };
        await using var conn = new NpgsqlConnection(cs.ConnectionString);
        await conn.OpenAsync();
        int backendPid = await ScalarAsync<int>(conn, "select pg_backend_pid()");

        var clients = await ShowAsync(host.Port, "SHOW CLIENTS");
        var me = clients.Single("application_name", "show-clients-test");
        Assert.Equal("C", clients.Value(me, "type"));
        Assert.Equal("postgres", clients.Value(me, "database"));
        Assert.Equal("postgres", clients.Value(me, "user"));
        Assert.Equal("active", clients.Value(me, "state"));
        Assert.Equal("127.0.0.1", clients.Value(me, "addr"));

        var servers = await ShowAsync(host.Port, "SHOW SERVERS");
        var mine = servers.Single("remote_pid", backendPid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("S", servers.Value(mine, "type"));
        Assert.Equal("active", servers.Value(mine, "state"));
        Assert.Equal("show-clients-test", servers.Value(mine, "application_name"));
        Assert.Equal(clients.Value(me, "ptr"), servers.Value(mine, "link"));
    }

    [Fact]
    public async Task ShowStats_CountsTheQueriesOfADatabase()
    {
        await using var host = StartProxy(_fixture.Primary);
        await using (var client = await Protocol.RawPgClient.ConnectAsync("127.0.0.1", host.Port, "postgres", "postgres"))
        {
            for (int i = 0; i < 3; i++)
            {
                Assert.Null((await client.QueryAsync("select 1")).ErrorCode);
            }
        }

        var stats = await ShowAsync(host.Port, "SHOW STATS");
        var row = stats.Single("database", "postgres");
        Assert.Equal(3, stats.Int(row, "total_query_count"));
        Assert.True(stats.Int(row, "total_received") > 0, stats.ToString());
        Assert.True(stats.Int(row, "total_sent") > 0, stats.ToString());

        var totals = await ShowAsync(host.Port, "SHOW STATS_TOTALS");
        Assert.Equal(stats.Value(row, "total_query_count"), totals.Value(totals.Single("database", "postgres"), "query_count"));
    }

    [Fact]
    public async Task ShowConfig_ShowsTheRunningValues()
    {
        await using var host = StartProxy(_fixture.Primary);
        var config = await ShowAsync(host.Port, "Show Config");
        var row = config.Single("key", "default_pool_size");
        Assert.Equal("5", config.Value(row, "value"));
        Assert.Equal("20", config.Value(row, "default"));
        Assert.Equal("yes", config.Value(row, "changeable"));
        Assert.Equal("no", config.Value(config.Single("key", "listen_port"), "changeable"));
        Assert.Equal(AdminSupport.Admin, config.Value(config.Single("key", "admin_users"), "value"));
    }

    [Fact]
    public async Task ShowVersionHelpListsStateUsers_AnswerSensibly()
    {
        await using var host = StartProxy(_fixture.Primary);
        var version = await ShowAsync(host.Port, "SHOW VERSION");
        Assert.Contains("PgBouncer 1.18.0", version.Rows.Single()[0], StringComparison.Ordinal);

        var help = await RunAsync(host.Port, "SHOW HELP");
        Assert.Contains("Console usage", help.StandardError, StringComparison.Ordinal);
        Assert.Contains("KILL_CLIENT", help.StandardError, StringComparison.Ordinal);

        await using (var conn = await host.OpenAsync())
        {
            var lists = await ShowAsync(host.Port, "SHOW LISTS");
            Assert.Equal(1, lists.Int(lists.Single("list", "pools"), "items"));
            Assert.Equal(2, lists.Int(lists.Single("list", "used_clients"), "items"));

            var users = await ShowAsync(host.Port, "SHOW USERS");
            Assert.Single(users.Where("name", "postgres"));
        }

        var state = await ShowAsync(host.Port, "SHOW STATE");
        Assert.Equal("yes", state.Value(state.Single("key", "active"), "value"));
    }
}
