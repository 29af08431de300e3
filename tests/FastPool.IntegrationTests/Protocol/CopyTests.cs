using System.Data;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;
using NpgsqlTypes;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Protocol;

/// <summary>COPY FROM STDIN / TO STDOUT (text and binary) through the proxy, including failures mid-COPY.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CopyTests
{
    private const int RowCount = 10_000;
    private readonly PostgresFixture _fixture;

    public CopyTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task BinaryCopyIn_TenThousandRows_ThenBinaryCopyOut_ReturnsThem()
    {
        var table = UniqueName("copy_bin");
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await ExecAsync(conn, $"create table {table}(id int not null, name text, amount numeric)");
        try
        {
            await using (var importer = await conn.BeginBinaryImportAsync($"copy {table} (id, name, amount) from stdin (format binary)"))
            {
                for (int i = 0; i < RowCount; i++)
                {
                    await importer.StartRowAsync();
                    await importer.WriteAsync(i, NpgsqlDbType.Integer);
                    if (i % 100 == 0)
                    {
                        await importer.WriteNullAsync();
                    }
                    else
                    {
                        await importer.WriteAsync("name-" + Invariant(i), NpgsqlDbType.Text);
                    }

                    await importer.WriteAsync(i * 1.5m, NpgsqlDbType.Numeric);
                }

                Assert.Equal((ulong)RowCount, await importer.CompleteAsync());
            }

            Assert.Equal((long)RowCount, await ScalarAsync<long>(conn, $"select count(*) from {table}"));
            Assert.Equal(100L, await ScalarAsync<long>(conn, $"select count(*) from {table} where name is null"));

            // Also visible to anyone else (the COPY committed on the server).
            Assert.Equal(Invariant(RowCount), await _fixture.Primary.PsqlAsync($"select count(*) from {table}"));

            int rows = 0;
            long idSum = 0;
            await using (var exporter = await conn.BeginBinaryExportAsync($"copy (select id, name, amount from {table} order by id) to stdout (format binary)"))
            {
                while (await exporter.StartRowAsync() != -1)
                {
                    var id = await exporter.ReadAsync<int>();
                    Assert.Equal(rows, id);
                    if (id % 100 == 0)
                    {
                        Assert.True(exporter.IsNull);
                        await exporter.SkipAsync();
                    }
                    else
                    {
                        Assert.Equal("name-" + Invariant(id), await exporter.ReadAsync<string>());
                    }

                    Assert.Equal(id * 1.5m, await exporter.ReadAsync<decimal>());
                    idSum += id;
                    rows++;
                }
            }

            Assert.Equal(RowCount, rows);
            Assert.Equal((long)RowCount * (RowCount - 1) / 2, idSum);
            Assert.Equal(1, await ScalarAsync(conn, "select 1"));
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop table if exists {table}");
        }
    }

    [Fact]
    public async Task TextCopyIn_TenThousandRows_ThenTextCopyOut_ReturnsThem()
    {
        var table = UniqueName("copy_txt");
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await ExecAsync(conn, $"create table {table}(id int not null, name text)");
        try
        {
            await using (var writer = await conn.BeginTextImportAsync($"copy {table} (id, name) from stdin"))
            {
                for (int i = 0; i < RowCount; i++)
                {
                    // Tabs and backslashes inside values are escaped as COPY text format requires.
                    await writer.WriteAsync(Invariant(i) + "\t" + (i % 50 == 0 ? "\\N" : "row\\t" + Invariant(i)) + "\n");
                }
            }

            Assert.Equal((long)RowCount, await ScalarAsync<long>(conn, $"select count(*) from {table}"));
            Assert.Equal("row\t7", await ScalarAsync(conn, $"select name from {table} where id = 7"));
            Assert.Equal((long)(RowCount / 50), await ScalarAsync<long>(conn, $"select count(*) from {table} where name is null"));

            string text;
            using (var reader = await conn.BeginTextExportAsync($"copy (select id, name from {table} order by id) to stdout"))
            {
                text = await reader.ReadToEndAsync();
            }

            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(RowCount, lines.Length);
            Assert.Equal("0\t\\N", lines[0]);
            Assert.Equal("7\trow\\t7", lines[7]);
            Assert.Equal(Invariant(RowCount - 1) + "\trow\\t" + Invariant(RowCount - 1), lines[^1]);
            Assert.Equal(1, await ScalarAsync(conn, "select 1"));
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop table if exists {table}");
        }
    }

    [Fact]
    public async Task BinaryCopyIn_NotNullViolation_SurfacesSqlState_AndConnectionRecovers()
    {
        var table = UniqueName("copy_nn");
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await ExecAsync(conn, $"create table {table}(id int not null, name text)");
        try
        {
            var ex = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                await using var importer = await conn.BeginBinaryImportAsync($"copy {table} (id, name) from stdin (format binary)");
                for (int i = 0; i < 5000; i++)
                {
                    await importer.StartRowAsync();
                    if (i == 2500)
                    {
                        await importer.WriteNullAsync();
                    }
                    else
                    {
                        await importer.WriteAsync(i, NpgsqlDbType.Integer);
                    }

                    await importer.WriteAsync("v", NpgsqlDbType.Text);
                }

                await importer.CompleteAsync();
            });
            Assert.Equal(PostgresErrorCodes.NotNullViolation, ex.SqlState);

            await AssertUsableAfterCopyErrorAsync(proxy, conn, table);
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop table if exists {table}");
        }
    }

    [Fact]
    public async Task TextCopyIn_BadValue_SurfacesSqlState_AndConnectionRecovers()
    {
        var table = UniqueName("copy_bad");
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await ExecAsync(conn, $"create table {table}(id int not null, name text)");
        try
        {
            var ex = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                var writer = await conn.BeginTextImportAsync($"copy {table} (id, name) from stdin");
                try
                {
                    for (int i = 0; i < 5000; i++)
                    {
                        await writer.WriteAsync((i == 10 ? "not-a-number" : Invariant(i)) + "\tv\n");
                    }
                }
                finally
                {
                    await writer.DisposeAsync();
                }
            });
            Assert.Equal(PostgresErrorCodes.InvalidTextRepresentation, ex.SqlState);

            await AssertUsableAfterCopyErrorAsync(proxy, conn, table);
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop table if exists {table}");
        }
    }

    [Fact]
    public async Task CopyIn_CancelledByClient_RollsBack_AndConnectionStaysUsable()
    {
        var table = UniqueName("copy_cancel");
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await ExecAsync(conn, $"create table {table}(id int)");
        try
        {
            // Disposing an importer without Complete sends CopyFail; the server aborts the COPY.
            await using (var importer = await conn.BeginBinaryImportAsync($"copy {table} (id) from stdin (format binary)"))
            {
                for (int i = 0; i < 1000; i++)
                {
                    await importer.WriteRowAsync(CancellationToken.None, i);
                }
            }

            Assert.Equal(ConnectionState.Open, conn.State);
            Assert.Equal(0L, await ScalarAsync<long>(conn, $"select count(*) from {table}"));

            await using (var importer = await conn.BeginBinaryImportAsync($"copy {table} (id) from stdin (format binary)"))
            {
                await importer.WriteRowAsync(CancellationToken.None, 1);
                await importer.CompleteAsync();
            }

            Assert.Equal(1L, await ScalarAsync<long>(conn, $"select count(*) from {table}"));
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop table if exists {table}");
        }
    }

    [Fact]
    public async Task CopyOut_ErrorMidStream_SurfacesSqlState_AndConnectionRecovers()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();

        // The division by zero happens after thousands of rows were already sent as CopyData.
        var ex = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            using var reader = await conn.BeginTextExportAsync("copy (select 1000 / (5000 - g) from generate_series(1, 6000) g) to stdout");
            await reader.ReadToEndAsync();
        });
        Assert.Equal(PostgresErrorCodes.DivisionByZero, ex.SqlState);

        if (conn.State != ConnectionState.Open)
        {
            await conn.CloseAsync();
            await conn.OpenAsync();
        }

        Assert.Equal(7, await ScalarAsync(conn, "select 7"));
    }

    /// <summary>
    /// After a failed COPY IN: the failed COPY left nothing behind, and either the same connection works or (if
    /// Npgsql chose to break it) a fresh one does, with no server connections leaked by the proxy.
    /// </summary>
    private async Task AssertUsableAfterCopyErrorAsync(ProxyHost proxy, NpgsqlConnection conn, string table)
    {
        if (conn.State == ConnectionState.Open)
        {
            Assert.Equal(0L, await ScalarAsync<long>(conn, $"select count(*) from {table}"));
            Assert.Equal(1, await ScalarAsync(conn, "select 1"));
            await using var insert = new NpgsqlCommand($"insert into {table} values (1, 'ok')", conn);
            Assert.Equal(1, await insert.ExecuteNonQueryAsync());
        }
        else
        {
            await using var fresh = await proxy.OpenAsync();
            Assert.Equal(0L, await ScalarAsync<long>(fresh, $"select count(*) from {table}"));
        }

        await using (var other = await proxy.OpenAsync())
        {
            var pid = await ScalarAsync<int>(other, "select pg_backend_pid()");
            Assert.NotEqual(other.ProcessID, pid);
            Assert.True(proxy.Server.ServerCount <= proxy.Config.DefaultPoolSize, $"proxy holds {proxy.Server.ServerCount} server connections");
        }

        // Server-side: the backends through this proxy are no more than its pool size, and none is stuck in COPY.
        var stuck = await _fixture.Primary.PsqlAsync(
            $"select count(*) from pg_stat_activity where query like 'copy {table}%' and state = 'active'");
        Assert.Equal("0", stuck);
    }
}
