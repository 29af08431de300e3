using FastPool.IntegrationTests.Infrastructure;
using Npgsql;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Protocol;

/// <summary>Pipelined extended-protocol batches (many Parse/Bind/Execute before one Sync) through the proxy.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PipelineBatchTests
{
    private readonly PostgresFixture _fixture;

    public PipelineBatchTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Batch_WithFailingCommandInTheMiddle_SurfacesError_SkipsTheRest_AndConnectionStaysUsable()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await ExecAsync(conn, "create temp table batch_t(id int)");

        await using (var batch = new NpgsqlBatch(conn)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("insert into batch_t values (1)"),
                new NpgsqlBatchCommand("select 2"),
                new NpgsqlBatchCommand("select 1/0"),
                new NpgsqlBatchCommand("insert into batch_t values (4)"),
                new NpgsqlBatchCommand("select 5"),
            },
        })
        {
            var seen = new List<int>();
            var ex = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                await using var reader = await batch.ExecuteReaderAsync();
                do
                {
                    while (await reader.ReadAsync())
                    {
                        seen.Add(reader.GetInt32(0));
                    }
                }
                while (await reader.NextResultAsync());
            });
            Assert.Equal(PostgresErrorCodes.DivisionByZero, ex.SqlState);

            // The results before the failing command arrived; nothing after it ran ("select 5" never answered).
            Assert.Equal([2], seen);
        }

        // One Sync for the whole batch: it was one implicit transaction, so the insert before the error is
        // rolled back and the insert after it never ran.
        Assert.Equal(0L, await ScalarAsync<long>(conn, "select count(*) from batch_t"));

        // A following batch on the same connection works.
        await using (var next = new NpgsqlBatch(conn)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("insert into batch_t values (10)"),
                new NpgsqlBatchCommand("insert into batch_t values (11)"),
                new NpgsqlBatchCommand("select sum(id) from batch_t"),
            },
        })
        {
            Assert.Equal(21L, await next.ExecuteScalarAsync());
        }

        Assert.Equal(1, await ScalarAsync(conn, "select 1"));
    }

    [Fact]
    public async Task Batch_NonQueryFailure_ThenNextBatchSucceeds()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await ExecAsync(conn, "create temp table batch_nq(id int primary key)");

        for (int round = 0; round < 3; round++)
        {
            await using var failing = new NpgsqlBatch(conn)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand("insert into batch_nq values (1)"),
                    new NpgsqlBatchCommand("insert into batch_nq values (1)"),
                    new NpgsqlBatchCommand("insert into batch_nq values (2)"),
                },
            };
            var ex = await Assert.ThrowsAsync<PostgresException>(() => failing.ExecuteNonQueryAsync());
            Assert.Equal(PostgresErrorCodes.UniqueViolation, ex.SqlState);
        }

        Assert.Equal(0L, await ScalarAsync<long>(conn, "select count(*) from batch_nq"));

        await using var ok = new NpgsqlBatch(conn)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("insert into batch_nq values (1)"),
                new NpgsqlBatchCommand("insert into batch_nq values (2)"),
            },
        };
        Assert.Equal(2, await ok.ExecuteNonQueryAsync());
    }

    [Fact]
    public async Task Batch_OfHundredCommands_AllSucceed()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await ExecAsync(conn, "create temp table batch_100(id int, payload text)");

        await using var batch = new NpgsqlBatch(conn);
        for (int i = 0; i < 100; i++)
        {
            var command = new NpgsqlBatchCommand("insert into batch_100 values ($1, $2)");
            command.Parameters.AddWithValue(i);
            command.Parameters.AddWithValue(new string('p', i * 50));
            batch.BatchCommands.Add(command);
        }

        Assert.Equal(100, await batch.ExecuteNonQueryAsync());
        Assert.All<NpgsqlBatchCommand>(batch.BatchCommands, c => Assert.Equal(1, c.RecordsAffected));

        await using var selects = new NpgsqlBatch(conn);
        for (int i = 0; i < 100; i++)
        {
            var command = new NpgsqlBatchCommand("select id, length(payload) from batch_100 where id = $1");
            command.Parameters.AddWithValue(i);
            selects.BatchCommands.Add(command);
        }

        await using var reader = await selects.ExecuteReaderAsync();
        int results = 0;
        do
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal(results, reader.GetInt32(0));
            Assert.Equal(results * 50, reader.GetInt32(1));
            Assert.False(await reader.ReadAsync());
            results++;
        }
        while (await reader.NextResultAsync());

        Assert.Equal(100, results);
    }
}
