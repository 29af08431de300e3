using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Resilience;
using FastPool.Proxy.Configuration;
using FastPool.Routing.Classification;
using Npgsql;
using static FastPool.IntegrationTests.Routing.RoutingSupport;

namespace FastPool.IntegrationTests.Routing;

/// <summary>
/// Transaction pooling over a real primary and streaming standby: which node served each statement is what
/// pg_is_in_recovery() says (true on the standby), and SHOW POOL_NODES counts the reads per node.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ReadWriteSplitTests
{
    private readonly PostgresFixture _fixture;

    public ReadWriteSplitTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Reads_go_to_the_standby_and_writes_to_the_primary()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await CreateOnPrimaryAsync(primary, standby, "create table if not exists rt_split (id int)", "rt_split");
        await using var host = StartProxy(primary, [primary, standby]);
        await WaitForBalancingAsync(host, 1);
        long before = await SelectCountAsync(host, 1);

        await using var conn = await OpenAsync(host);
        for (int i = 0; i < 20; i++)
        {
            Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        }

        Assert.True(await OnStandbyAsync(conn, "(select pg_is_in_recovery() from rt_split limit 1) union all select pg_is_in_recovery()"));
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery() where 'for update' <> $$ insert $$"));

        // Writes, and reads that lock rows or call write functions (read_your_writes keeps the reads after a
        // write on the primary too, until the standby has replayed it).
        Assert.False(await OnStandbyAsync(conn, "insert into rt_split values (1) returning pg_is_in_recovery()"));
        Assert.False(await OnStandbyAsync(conn, "with w as (insert into rt_split values (2) returning id) select pg_is_in_recovery() from w"));
        Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery() from rt_split /* for update */ for\n  update"));
        Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery(), txid_current()"));
        Assert.False(await OnStandbyAsync(conn, "/*NO LOAD BALANCE*/ select pg_is_in_recovery()"));

        // A user sees the reads counted on the standby.
        Assert.True(await SelectCountAsync(host, 1) - before >= 23);
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task A_read_only_transaction_stays_on_the_standby_where_a_write_fails()
    {
        await using var host = await StartBalancedAsync();
        await using var conn = await OpenAsync(host);

        // (Read-write transactions: SplitTransactionTests.)
        await ExecAsync(conn, "begin read only");
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        var refused = await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(conn, "create table rt_never (id int)"));
        Assert.Equal("25006", refused.SqlState);
        await ExecAsync(conn, "rollback");

        // After the transaction, reads are balanced again.
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
    }

    [Theory]
    [InlineData("commit and chain")]
    [InlineData("ROLLBACK AND CHAIN")]
    [InlineData("end work and chain")]
    public async Task A_read_only_transaction_chained_stays_read_only_on_the_standby(string chain)
    {
        await using var host = await StartBalancedAsync();
        await using var conn = await OpenAsync(host);

        // The chained transaction is READ ONLY like the first (PostgreSQL docs, COMMIT): the write gets PostgreSQL's
        // answer from the standby, where it used to wait for the standby's transaction to end, which never came.
        await ExecAsync(conn, "begin read only");
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        await ExecAsync(conn, chain);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var refused = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var cmd = new NpgsqlCommand("create table rt_never_chained (id int)", conn);
            await cmd.ExecuteNonQueryAsync(cts.Token);
        });
        Assert.Equal("25006", refused.SqlState);
        await ExecAsync(conn, "rollback");

        // AND NO CHAIN ends it: the write that follows runs on the primary.
        await ExecAsync(conn, "begin read only");
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        await ExecAsync(conn, "commit and no chain");
        Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery(), txid_current()"));
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task Serializable_transactions_and_clients_run_on_the_primary_and_do_not_poison_other_clients()
    {
        // A standby refuses serializable mode even for reads ("cannot use serializable mode in a hot standby").
        await using var host = await StartBalancedAsync();

        await using (var conn = await OpenAsync(host))
        {
            await ExecAsync(conn, "begin isolation level serializable read only");
            Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
            await ExecAsync(conn, "commit");
            await ExecAsync(conn, "start transaction read only, isolation level serializable deferrable");
            Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
            await ExecAsync(conn, "commit");
        }

        // A client whose default is serializable reads from the primary, by startup parameter or by SET.
        var builder = new NpgsqlConnectionStringBuilder(host.ConnectionString(Database)) { Options = "-c default_transaction_isolation=serializable" };
        await using (var serializable = new NpgsqlConnection(builder.ConnectionString))
        {
            await serializable.OpenAsync();
            for (int i = 0; i < 3; i++)
            {
                Assert.False(await OnStandbyAsync(serializable, "select pg_is_in_recovery()"));
            }
        }

        await using (var conn = await OpenAsync(host))
        {
            await ExecAsync(conn, "set default_transaction_isolation = 'serializable'");
            Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        }

        // Other clients (other startup parameters) log in and are balanced as before.
        var other = new NpgsqlConnectionStringBuilder(host.ConnectionString(Database)) { ApplicationName = "after_serializable", Options = "-c work_mem=8MB" };
        for (int i = 0; i < 3; i++)
        {
            await using var conn = new NpgsqlConnection(other.ConnectionString);
            await conn.OpenAsync();
            Assert.True(await ReachesStandbyAsync(conn, "select pg_is_in_recovery()"));
        }

        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Fact]
    public async Task A_write_pipelined_behind_a_read_waits_for_the_standby_and_runs_on_the_primary()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await CreateOnPrimaryAsync(primary, standby, "create table if not exists rt_pipe (id int)", "rt_pipe");
        await using var host = StartProxy(primary, [primary, standby]);
        await WaitForBalancingAsync(host, 1);

        // Simple protocol: three Query messages in one write, the second a write.
        await using var raw = await RawPgClient.ConnectAsync(host.Port);
        await raw.LoginAsync(Database);
        await raw.SendAsync([
            .. RawPgClient.Query("select pg_is_in_recovery()"),
            .. RawPgClient.Query("insert into rt_pipe values (1) returning pg_is_in_recovery()"),
            .. RawPgClient.Query("select pg_is_in_recovery()"),
        ]);
        var values = new List<string?>();
        for (int i = 0; i < 3; i++)
        {
            var messages = await raw.ReadUntilAsync('Z', TimeSpan.FromSeconds(30));
            Assert.DoesNotContain(messages, m => m.Type == 'E');
            values.Add(Assert.Single(messages, m => m.Type == 'D').Columns()[0]);
        }

        // The read ran on the standby; the write and what was pipelined after it, on the primary.
        Assert.Equal(["t", "f", "f"], values);

        // Extended protocol: a batch whose statements are a read and a write goes to the primary as a whole.
        await using var conn = await OpenAsync(host);
        await using var batch = new NpgsqlBatch(conn)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("select pg_is_in_recovery()"),
                new NpgsqlBatchCommand("insert into rt_pipe values (2) returning pg_is_in_recovery()"),
            },
        };
        await using var reader = await batch.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.False(reader.GetBoolean(0));
        Assert.True(await reader.NextResultAsync());
        Assert.True(await reader.ReadAsync());
        Assert.False(reader.GetBoolean(0));
    }

    [Fact]
    public async Task Function_lists_and_query_patterns_send_matching_reads_to_the_primary()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await CreateOnPrimaryAsync(primary, standby, "create or replace function rt_where() returns bool language sql as 'select pg_is_in_recovery()'", "rt_where");

        await using (var plain = StartProxy(primary, [primary, standby]))
        {
            await WaitForBalancingAsync(plain, 1);
            await using var conn = await OpenAsync(plain);
            Assert.True(await ReachesStandbyAsync(conn, "select rt_where()"));
        }

        await using (var listed = StartProxy(primary, [primary, standby], r => r with
        {
            // Regular expressions matching whole function names, as in Pgpool-II.
            Classifier = new ClassifierOptions { WriteFunctions = new FunctionList([.. ClassifierOptions.DefaultWriteNames, "rt_wh.*"]) },
        }))
        {
            await WaitForBalancingAsync(listed, 1);
            await using var conn = await OpenAsync(listed);
            // Reads first: a statement sent to the primary counts as a write for read_your_writes.
            Assert.True(await ReachesStandbyAsync(conn, "select pg_is_in_recovery() as rt_where"));
            Assert.False(await OnStandbyAsync(conn, "select public.RT_WHERE()"));
        }

        // primary_routing_query_pattern_list as configured: anchored, so a pattern matches the whole statement.
        await using (var patterned = StartProxy(primary, [primary, standby], r => r with
        {
            PrimaryRoutingPatterns = PatternsFromConfig("""primary_routing_query_pattern_list = '.*\brt_hot\b.*;select pg_is_in_recovery\(\) as rt_exact'"""),
        }))
        {
            await WaitForBalancingAsync(patterned, 1);
            await using var conn = await OpenAsync(patterned);
            Assert.True(await ReachesStandbyAsync(conn, "select pg_is_in_recovery() as rt_exact_not"));
            Assert.True(await ReachesStandbyAsync(conn, "select pg_is_in_recovery() as rt_cold"));
            Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery() as rt_hot"));
            Assert.False(await OnStandbyAsync(conn, "SELECT pg_is_in_recovery() AS rt_exact;"));
        }

        await using (var readOnly = StartProxy(primary, [primary, standby], r => r with
        {
            Classifier = new ClassifierOptions { ReadOnlyFunctions = new FunctionList(["pg_is_in_recovery"]) },
        }))
        {
            await WaitForBalancingAsync(readOnly, 1);
            await using var conn = await OpenAsync(readOnly);
            Assert.True(await ReachesStandbyAsync(conn, "select pg_is_in_recovery()"));
            Assert.False(await OnStandbyAsync(conn, "select rt_where()"));
        }
    }

    [Fact]
    public async Task A_temporary_table_keeps_the_client_on_the_primary()
    {
        await using var host = await StartBalancedAsync();
        await using var conn = await OpenAsync(host);

        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        await ExecAsync(conn, "create temp table rt_tmp (id int)");
        await ExecAsync(conn, "insert into rt_tmp values (7)");
        await using var cmd = new NpgsqlCommand("select id, pg_is_in_recovery() from rt_tmp", conn);
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(7, reader.GetInt32(0));
        Assert.False(reader.GetBoolean(1));
        await reader.CloseAsync();
        Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
    }

    [Fact]
    public async Task A_session_level_set_config_runs_on_the_primary_so_the_pinned_client_can_still_write()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await CreateOnPrimaryAsync(primary, standby, "create table if not exists rt_tenant (id int)", "rt_tenant");
        await using var host = StartProxy(primary, [primary, standby]);
        await WaitForBalancingAsync(host, 1);
        await using var conn = await OpenAsync(host);

        // A local one ends with its transaction: a plain read, balanced.
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery() from (select set_config('app.tenant', '7', true)) s"));

        // A session-level one (row-level security and tenant variables are set this way) stays on its server.
        Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery() from (select set_config('app.tenant', '42', false)) s"));
        await ExecAsync(conn, "insert into rt_tenant values (42)");
        await using var cmd = new NpgsqlCommand("select current_setting('app.tenant'), pg_is_in_recovery()", conn);
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal("42", reader.GetString(0));
        Assert.False(reader.GetBoolean(1));
        await reader.CloseAsync();
        ProxyChecks.AssertNoUnexpectedErrors(host);
    }

    [Theory]
    [InlineData(WriteStickiness.Off, true, true)]
    [InlineData(WriteStickiness.Transaction, true, true)]
    [InlineData(WriteStickiness.TransTransaction, true, false)]
    [InlineData(WriteStickiness.Always, false, false)]
    public async Task Disable_load_balance_on_write_decides_where_later_reads_go(WriteStickiness stickiness, bool afterAutocommitWrite, bool afterTransactionWrite)
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await CreateOnPrimaryAsync(primary, standby, "create table if not exists rt_sticky (id int)", "rt_sticky");

        // read_your_writes off, so only disable_load_balance_on_write decides.
        await using var host = StartProxy(primary, [primary, standby], r => r with { DisableLoadBalanceOnWrite = stickiness, ReadYourWrites = false });
        await WaitForBalancingAsync(host, 1);
        await using var conn = await OpenAsync(host);

        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        await ExecAsync(conn, "insert into rt_sticky values (1)");
        Assert.Equal(afterAutocommitWrite, await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        await using (var tx = await conn.BeginTransactionAsync())
        {
            await ExecAsync(conn, "insert into rt_sticky values (2)");
            await tx.CommitAsync();
        }

        Assert.Equal(afterTransactionWrite, await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
    }

    [Fact]
    public async Task Redirect_preferences_send_a_database_or_an_application_where_they_name()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await using var host = StartProxy(primary, [primary, standby], r => r with
        {
            DatabaseRedirects = [new RedirectPreference(new System.Text.RegularExpressions.Regex("^(?:r.)$"), RedirectTarget.Primary, -1, 1)],
            AppNameRedirects =
            [
                new RedirectPreference(new System.Text.RegularExpressions.Regex("^(?:reporting)$"), RedirectTarget.Standby, -1, 1),
                new RedirectPreference(new System.Text.RegularExpressions.Regex("^(?:half)$"), RedirectTarget.Node, 1, 0.5),
            ],
        });
        await WaitForBalancingAsync(host, 1);

        await using (var plain = await OpenAsync(host))
        {
            Assert.False(await OnStandbyAsync(plain, "select pg_is_in_recovery()"));
        }

        await using (var reporting = await OpenWithApplicationAsync(host, "reporting"))
        {
            Assert.True(await OnStandbyAsync(reporting, "select pg_is_in_recovery()"));
        }

        await using var half = await OpenWithApplicationAsync(host, "half");
        int onStandby = 0;
        for (int i = 0; i < 200; i++)
        {
            onStandby += await OnStandbyAsync(half, "select pg_is_in_recovery()") ? 1 : 0;
        }

        Assert.InRange(onStandby, 60, 140);
    }

    private static async Task<NpgsqlConnection> OpenWithApplicationAsync(ProxyHost host, string applicationName)
    {
        var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(host.ConnectionString(Database)) { ApplicationName = applicationName }.ConnectionString);
        await conn.OpenAsync();
        return conn;
    }

    [Fact]
    public async Task Statement_pooling_routes_each_statement()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await CreateOnPrimaryAsync(primary, standby, "create table if not exists rt_stmt (id int)", "rt_stmt");
        await using var host = StartProxy(primary, [primary, standby], r => r with { ReadYourWrites = false }, PoolMode.Statement);
        await WaitForBalancingAsync(host, 1);
        await using var conn = await OpenAsync(host);
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        Assert.False(await OnStandbyAsync(conn, "insert into rt_stmt values (1) returning pg_is_in_recovery()"));
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
    }

    [Fact]
    public async Task Session_pooling_balances_reads_and_writes_on_the_detected_primary_wherever_it_is_listed()
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await using var host = StartProxy(primary, [standby, primary], mode: PoolMode.Session);
        await WaitForBalancingAsync(host, 0);
        await using var conn = await OpenAsync(host);
        Assert.True(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
        Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery(), txid_current()"));
    }

    [Theory]
    [InlineData(PoolMode.Transaction)]
    [InlineData(PoolMode.Session)]
    public async Task Load_balance_mode_off_sends_everything_to_the_primary_even_when_it_is_listed_second(PoolMode mode)
    {
        var primary = _fixture.Primary;
        var standby = await _fixture.GetStandbyAsync();
        await using var host = StartProxy(primary, [standby, primary], r => r with { LoadBalanceMode = false }, mode);
        var nodes = await WaitForBalancingAsync(host);
        Assert.Equal("standby", nodes.Value(NodeRow(nodes, 0), "role"));
        await using var conn = await OpenAsync(host);
        long before = await SelectCountAsync(host, 1);
        for (int i = 0; i < 3; i++)
        {
            Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery()"));
            Assert.False(await OnStandbyAsync(conn, "select pg_is_in_recovery(), txid_current()"));
        }

        // SHOW POOL_NODES still counts the reads the primary served (Pgpool-II's select_cnt), not the writes.
        Assert.Equal(before + 3, await SelectCountAsync(host, 1));
        Assert.Equal(0, await SelectCountAsync(host, 0));
    }

    /// <summary>A proxy over the primary and the standby (node 1), once the standby takes reads.</summary>
    private async Task<ProxyHost> StartBalancedAsync()
    {
        var standby = await _fixture.GetStandbyAsync();
        var host = StartProxy(_fixture.Primary, [_fixture.Primary, standby]);
        try
        {
            await WaitForBalancingAsync(host, 1);
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    /// <summary>primary_routing_query_pattern_list read as a configuration file gives it.</summary>
    private static IReadOnlyList<System.Text.RegularExpressions.Regex> PatternsFromConfig(string line)
    {
        var result = ConfigLoader.LoadFromText($"[databases]\n[pgbouncer]\n[fastpool]\n{line}\n", "pgbouncer.ini", Path.GetTempPath());
        Assert.True(result.Success, string.Join(Environment.NewLine, result.Errors));
        return result.Config!.FastPool.Routing.PrimaryRoutingPatterns;
    }
}
