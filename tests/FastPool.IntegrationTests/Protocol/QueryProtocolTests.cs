using System.Data;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;
using NpgsqlTypes;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Protocol;

/// <summary>Simple and extended query protocol through the proxy, as a client sees them.</summary>
[Collection(PostgresCollection.Name)]
public sealed class QueryProtocolTests
{
    private readonly PostgresFixture _fixture;

    public QueryProtocolTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task SimpleQuery_MultipleStatements_ReturnEveryResultSetInOrder()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var raw = await RawPgClient.ConnectAsync("127.0.0.1", proxy.Port, "postgres", "postgres");

        var response = await raw.QueryAsync(
            "select 1 as a; select 'x' as b, null::text as c; select g from generate_series(1, 3) g; " +
            "create temp table raw_t(id int); insert into raw_t values (1), (2); ;");

        Assert.Null(response.ErrorCode);
        Assert.Equal('I', response.TransactionStatus);
        Assert.Equal(5, response.Results.Count);

        Assert.Equal(["a"], response.Results[0].Columns);
        Assert.Equal("1", Assert.Single(response.Results[0].Rows)[0]);
        Assert.Equal("SELECT 1", response.Results[0].CommandTag);

        Assert.Equal(["b", "c"], response.Results[1].Columns);
        Assert.Equal(new string?[] { "x", null }, Assert.Single(response.Results[1].Rows));

        Assert.Equal(["1", "2", "3"], response.Results[2].Rows.Select(r => r[0]!));
        Assert.Equal("SELECT 3", response.Results[2].CommandTag);
        Assert.Equal("CREATE TABLE", response.Results[3].CommandTag);
        Assert.Equal("INSERT 0 2", response.Results[4].CommandTag);

        // The next Query on the same connection sees the temp table: same server session.
        var count = await raw.QueryAsync("select count(*) from raw_t");
        Assert.Equal("2", count.Results[0].Rows[0][0]);

        var empty = await raw.QueryAsync(string.Empty);
        Assert.Equal(1, empty.EmptyQueryResponses);
        Assert.Equal("IZ", empty.Sequence.ToString());
    }

    [Fact]
    public async Task SimpleQuery_ErrorInTheMiddle_SkipsTheRest_AndSessionGoesOn()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var raw = await RawPgClient.ConnectAsync("127.0.0.1", proxy.Port, "postgres", "postgres");
        await raw.QueryAsync("create temp table raw_err(id int)");

        var response = await raw.QueryAsync("insert into raw_err values (1); select 1/0; insert into raw_err values (3)");
        Assert.Equal("22012", response.ErrorCode);
        Assert.Equal('I', response.TransactionStatus);

        // A multi-statement Query is one implicit transaction: the first insert is rolled back, the third never ran.
        var count = await raw.QueryAsync("select count(*) from raw_err");
        Assert.Null(count.ErrorCode);
        Assert.Equal("0", count.Results[0].Rows[0][0]);

        // Explicit transaction left in the failed state, then rolled back.
        var failed = await raw.QueryAsync("begin; select 1/0;");
        Assert.Equal("22012", failed.ErrorCode);
        Assert.Equal('E', failed.TransactionStatus);
        var aborted = await raw.QueryAsync("select 1");
        Assert.Equal("25P02", aborted.ErrorCode);
        var rollback = await raw.QueryAsync("rollback");
        Assert.Equal('I', rollback.TransactionStatus);
        Assert.Equal("42", (await raw.QueryAsync("select 42")).Results[0].Rows[0][0]);
    }

    [Fact]
    public async Task ExtendedQuery_ParametersOfManyTypes_AndNulls_RoundTrip()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();

        var ts = new DateTime(2024, 2, 29, 13, 14, 15, DateTimeKind.Utc).AddTicks(1230);
        var uuid = Guid.NewGuid();
        var bytes = new byte[] { 0, 1, 2, 254, 255 };
        await using var cmd = new NpgsqlCommand(
            "select $1::int, $2::bigint, $3::text, $4::bool, $5::float8, $6::numeric, $7::timestamptz, $8::uuid, " +
            "$9::bytea, $10::int[], $11::jsonb, $12::text, $13::int, $14::date",
            conn);
        cmd.Parameters.Add(new NpgsqlParameter { Value = 42, NpgsqlDbType = NpgsqlDbType.Integer });
        cmd.Parameters.Add(new NpgsqlParameter { Value = long.MaxValue, NpgsqlDbType = NpgsqlDbType.Bigint });
        cmd.Parameters.Add(new NpgsqlParameter { Value = "héllo 'quoted' \"wörld\" ✓", NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = true, NpgsqlDbType = NpgsqlDbType.Boolean });
        cmd.Parameters.Add(new NpgsqlParameter { Value = Math.PI, NpgsqlDbType = NpgsqlDbType.Double });
        cmd.Parameters.Add(new NpgsqlParameter { Value = 12345678901234567890.123456789m, NpgsqlDbType = NpgsqlDbType.Numeric });
        cmd.Parameters.Add(new NpgsqlParameter { Value = ts, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new NpgsqlParameter { Value = uuid, NpgsqlDbType = NpgsqlDbType.Uuid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = bytes, NpgsqlDbType = NpgsqlDbType.Bytea });
        cmd.Parameters.Add(new NpgsqlParameter { Value = new[] { 1, 2, 3 }, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        cmd.Parameters.Add(new NpgsqlParameter { Value = "{\"k\": [1, 2]}", NpgsqlDbType = NpgsqlDbType.Jsonb });
        cmd.Parameters.Add(new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Integer });
        cmd.Parameters.Add(new NpgsqlParameter { Value = new DateOnly(1999, 12, 31), NpgsqlDbType = NpgsqlDbType.Date });

        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(42, reader.GetInt32(0));
        Assert.Equal(long.MaxValue, reader.GetInt64(1));
        Assert.Equal("héllo 'quoted' \"wörld\" ✓", reader.GetString(2));
        Assert.True(reader.GetBoolean(3));
        Assert.Equal(Math.PI, reader.GetDouble(4));
        Assert.Equal(12345678901234567890.123456789m, reader.GetDecimal(5));
        Assert.Equal(ts, reader.GetFieldValue<DateTime>(6));
        Assert.Equal(uuid, reader.GetGuid(7));
        Assert.Equal(bytes, reader.GetFieldValue<byte[]>(8));
        Assert.Equal(new[] { 1, 2, 3 }, reader.GetFieldValue<int[]>(9));
        Assert.Equal("{\"k\": [1, 2]}", reader.GetString(10));
        Assert.True(reader.IsDBNull(11));
        Assert.True(reader.IsDBNull(12));
        Assert.Equal(new DateOnly(1999, 12, 31), reader.GetFieldValue<DateOnly>(13));
        Assert.False(await reader.ReadAsync());
    }

    [Fact]
    public async Task ExtendedQuery_ReexecutedCommand_AndPreparedStatement_Work()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await ExecAsync(conn, "create temp table prep_t(id int primary key, name text)");

        // The same command object re-executed with new values (unprepared: Parse each time).
        await using (var insert = new NpgsqlCommand("insert into prep_t values ($1, $2)", conn))
        {
            var id = insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Integer });
            var name = insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text });
            for (int i = 1; i <= 10; i++)
            {
                id.Value = i;
                name.Value = i % 3 == 0 ? DBNull.Value : "n" + Invariant(i);
                Assert.Equal(1, await insert.ExecuteNonQueryAsync());
            }
        }

        // Prepare(): a named server-side statement, executed many times.
        await using var select = new NpgsqlCommand("select name from prep_t where id = $1", conn);
        var p = new NpgsqlParameter<int> { NpgsqlDbType = NpgsqlDbType.Integer };
        select.Parameters.Add(p);
        await select.PrepareAsync();
        Assert.True(select.IsPrepared);
        for (int i = 1; i <= 10; i++)
        {
            p.TypedValue = i;
            var value = await select.ExecuteScalarAsync();
            Assert.Equal(i % 3 == 0 ? DBNull.Value : "n" + Invariant(i), value);
        }

        // The server really holds the prepared statement for this session.
        var prepared = await ScalarAsync<long>(conn, "select count(*) from pg_prepared_statements where statement like 'select name from prep_t%'");
        Assert.Equal(1L, prepared);

        // A failing execution of a prepared statement leaves it (and the connection) usable.
        await using var divide = new NpgsqlCommand("select 10 / $1", conn);
        var d = new NpgsqlParameter<int> { NpgsqlDbType = NpgsqlDbType.Integer };
        divide.Parameters.Add(d);
        await divide.PrepareAsync();
        d.TypedValue = 0;
        var ex = await Assert.ThrowsAsync<PostgresException>(() => divide.ExecuteScalarAsync());
        Assert.Equal(PostgresErrorCodes.DivisionByZero, ex.SqlState);
        d.TypedValue = 5;
        Assert.Equal(2, await divide.ExecuteScalarAsync());

        await select.UnprepareAsync();
        Assert.Equal(1L, await ScalarAsync<long>(conn, "select count(*) from pg_prepared_statements"));
    }

    [Fact]
    public async Task ExtendedQuery_MultipleStatementsInOneCommand_ReturnSeveralResultSets()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await using var cmd = new NpgsqlCommand("select 1; select 'two', null::int; select generate_series(1, 1000)", conn);
        await using var reader = await cmd.ExecuteReaderAsync();

        Assert.True(await reader.ReadAsync());
        Assert.Equal(1, reader.GetInt32(0));
        Assert.True(await reader.NextResultAsync());
        Assert.True(await reader.ReadAsync());
        Assert.Equal("two", reader.GetString(0));
        Assert.True(reader.IsDBNull(1));
        Assert.True(await reader.NextResultAsync());
        long sum = 0;
        while (await reader.ReadAsync())
        {
            sum += reader.GetInt32(0);
        }

        Assert.Equal(500500L, sum);
        Assert.False(await reader.NextResultAsync());
    }

    [Fact]
    public async Task ExtendedQuery_ErrorThenSameConnection_StillWorks_AndTransactionsBehave()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();

        var ex = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(conn, "select * from no_such_table_anywhere"));
        Assert.Equal(PostgresErrorCodes.UndefinedTable, ex.SqlState);
        Assert.Equal(1, await ScalarAsync(conn, "select 1"));

        await using (var tx = await conn.BeginTransactionAsync())
        {
            await ExecAsync(conn, "create temp table tx_t(id int)");
            await ExecAsync(conn, "insert into tx_t values (1)");
            var dup = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(conn, "select 1/0"));
            Assert.Equal(PostgresErrorCodes.DivisionByZero, dup.SqlState);
            var aborted = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(conn, "select 1"));
            Assert.Equal(PostgresErrorCodes.InFailedSqlTransaction, aborted.SqlState);
            await tx.RollbackAsync();
        }

        Assert.True(await ScalarAsync<bool>(conn, "select to_regclass('pg_temp.tx_t') is null"));
        Assert.Equal(ConnectionState.Open, conn.State);
    }
}
