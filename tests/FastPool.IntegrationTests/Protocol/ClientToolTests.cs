using System.Text.RegularExpressions;
using FastPool.IntegrationTests.Infrastructure;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Protocol;

/// <summary>The stock PostgreSQL clients (libpq: psql, pgbench) through the proxy.</summary>
[Collection(PostgresCollection.Name)]
public sealed partial class ClientToolTests
{
    private static readonly TimeSpan _toolTimeout = TimeSpan.FromSeconds(60);
    private readonly PostgresFixture _fixture;

    public ClientToolTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Psql_SimpleSelect_Prints42()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        var result = await PsqlAsync(proxy, "postgres", "-Atc", "select 40+2");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("42", result.StandardOutput.TrimEnd('\n'));
    }

    [Fact]
    public async Task Psql_MultiStatementCommand_PrintsEveryResult_AndErrorsCarrySqlState()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);

        // psql sends -c text as one simple Query; since PostgreSQL 15 it prints every result.
        var result = await PsqlAsync(proxy, "postgres", "-Atc", "select 1; select 'two'; select 3");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("1\ntwo\n3", result.StandardOutput.TrimEnd('\n'));

        var failed = await PsqlAsync(proxy, "postgres", "-v", "VERBOSITY=verbose", "-Atc", "select 1/0");
        Assert.NotEqual(0, failed.ExitCode);
        Assert.Contains("22012", failed.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Psql_Script_WithCopyInAndCopyOut_Works()
    {
        var table = UniqueName("psql_copy");
        var dir = Directory.CreateTempSubdirectory("fastpool-psql-").FullName;
        try
        {
            var input = Path.Combine(dir, "in.csv");
            var output = Path.Combine(dir, "out.csv");
            var lines = Enumerable.Range(1, 500).Select(i => $"{Invariant(i)},\"name, {Invariant(i)}\"").ToList();
            await File.WriteAllTextAsync(input, string.Join('\n', lines) + "\n");

            var script = Path.Combine(dir, "script.sql");
            await File.WriteAllTextAsync(script, $"""
                \set ON_ERROR_STOP on
                create table {table} (id int primary key, name text);
                \copy {table} from '{input}' with (format csv)
                select count(*), sum(id) from {table};
                begin;
                insert into {table} values (1000, 'in tx');
                select count(*) from {table};
                commit;
                \copy (select id, name from {table} where id <= 500 order by id) to '{output}' with (format csv)
                select name from {table} where id = 1000;
                """);

            await using var proxy = ProxyHost.Start(_fixture.Primary);
            var result = await PsqlAsync(proxy, "postgres", "-At", "-f", script);
            Assert.True(result.ExitCode == 0, result.ToString());
            var stdout = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Contains("COPY 500", stdout);
            Assert.Contains("500|125250", stdout);
            Assert.Contains("501", stdout);
            Assert.Equal("in tx", stdout[^1]);

            var exported = (await File.ReadAllTextAsync(output)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(lines, exported);
            Assert.Equal("501", await _fixture.Primary.PsqlAsync($"select count(*) from {table}"));
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop table if exists {table}");
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Pgbench_InitAndRun_SimpleExtendedPrepared_NoFailedTransactions()
    {
        var database = UniqueName("proto_bench");
        await _fixture.Primary.PsqlAsync($"create database {database}");
        try
        {
            await using (var proxy = ProxyHost.Start(_fixture.Primary, c => c with { DefaultPoolSize = 8 }))
            {
                var init = await PgbenchAsync(proxy, database, "-i", "-s", "1", "-q");
                Assert.True(init.ExitCode == 0, init.ToString());
                Assert.Equal("100000", await _fixture.Primary.PsqlAsync("select count(*) from pgbench_accounts", database));

                foreach (var mode in new[] { "simple", "extended", "prepared" })
                {
                    var run = await PgbenchAsync(proxy, database, "-c", "4", "-j", "2", "-t", "200", "-M", mode, "-n");
                    Assert.True(run.ExitCode == 0, $"-M {mode}: {run}");
                    var failed = FailedTransactions().Match(run.StandardOutput);
                    Assert.True(failed.Success, $"-M {mode}: no 'number of failed transactions' line\n{run}");
                    Assert.Equal("0", failed.Groups[1].Value);
                    var processed = ProcessedTransactions().Match(run.StandardOutput);
                    Assert.True(processed.Success, $"-M {mode}: {run}");
                    Assert.Equal("800", processed.Groups[1].Value);
                    Assert.Equal("800", processed.Groups[2].Value);
                }

                // 3 runs x 800 tpcb-like transactions, each one row in pgbench_history.
                Assert.Equal("2400", await _fixture.Primary.PsqlAsync("select count(*) from pgbench_history", database));
                Assert.True(proxy.Server.ServerCount <= 8, $"{proxy.Server.ServerCount} server connections");
            }
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop database if exists {database} with (force)");
        }
    }

    private static Task<ToolResult> PsqlAsync(ProxyHost proxy, string database, params string[] args) =>
        RunToolAsync(
            "psql",
            ["-X", "-h", "127.0.0.1", "-p", Invariant(proxy.Port), "-U", "postgres", "-d", database, .. args],
            _toolTimeout);

    private static Task<ToolResult> PgbenchAsync(ProxyHost proxy, string database, params string[] args) =>
        RunToolAsync(
            "pgbench",
            ["-h", "127.0.0.1", "-p", Invariant(proxy.Port), "-U", "postgres", .. args, database],
            _toolTimeout);

    [GeneratedRegex(@"number of failed transactions: (\d+)")]
    private static partial Regex FailedTransactions();

    [GeneratedRegex(@"number of transactions actually processed: (\d+)/(\d+)")]
    private static partial Regex ProcessedTransactions();
}
