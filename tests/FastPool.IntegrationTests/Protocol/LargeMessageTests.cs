using System.Data;
using System.Security.Cryptography;
using FastPool.IntegrationTests.Infrastructure;
using Npgsql;
using NpgsqlTypes;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Protocol;

/// <summary>Messages far larger than any proxy buffer (one DataRow over 64 MB, one 20 MB Bind) pass through intact.</summary>
[Collection(PostgresCollection.Name)]
public sealed class LargeMessageTests
{
    private const int BigTextLength = 70 * 1024 * 1024;
    private const int BigByteaLength = 20 * 1024 * 1024;
    private readonly PostgresFixture _fixture;

    public LargeMessageTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task Select_70MbText_ArrivesWithExactLength_AndSessionContinues()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();

        await using (var cmd = new NpgsqlCommand($"select 'a', repeat('x', {Invariant(BigTextLength)}), 'z'", conn))
        await using (var reader = await cmd.ExecuteReaderAsync(CommandBehavior.SequentialAccess))
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal("a", reader.GetString(0));

            // Streamed in 1 MB chunks: never holds the 70 MB (140 MB as UTF-16) string at once.
            long length = 0;
            long notX = 0;
            using (var text = await reader.GetTextReaderAsync(1))
            {
                var chunk = new char[1024 * 1024];
                int n;
                while ((n = await text.ReadAsync(chunk)) > 0)
                {
                    length += n;
                    if (chunk.AsSpan(0, n).ContainsAnyExcept('x'))
                    {
                        notX++;
                    }
                }
            }

            Assert.Equal(BigTextLength, length);
            Assert.Equal(0, notX);
            Assert.Equal("z", reader.GetString(2));
            Assert.False(await reader.ReadAsync());
        }

        // The proxy is back at a message boundary: ordinary traffic continues on the same session.
        Assert.Equal("after", await ScalarAsync(conn, "select 'after'"));
    }

    [Fact]
    public async Task Insert_20MbByteaParameter_RoundTrips()
    {
        var table = UniqueName("big_bytea");
        var data = new byte[BigByteaLength];
        new Random(12345).NextBytes(data);
        var expectedHash = Convert.ToHexStringLower(SHA256.HashData(data));

        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await proxy.OpenAsync();
        await ExecAsync(conn, $"create table {table}(id int primary key, b bytea)");
        try
        {
            await using (var insert = new NpgsqlCommand($"insert into {table} values (1, $1) returning length(b), encode(sha256(b), 'hex')", conn))
            {
                insert.Parameters.Add(new NpgsqlParameter { Value = data, NpgsqlDbType = NpgsqlDbType.Bytea });
                await using var reader = await insert.ExecuteReaderAsync();
                Assert.True(await reader.ReadAsync());
                Assert.Equal(BigByteaLength, reader.GetInt32(0));
                Assert.Equal(expectedHash, reader.GetString(1));
            }

            await using (var select = new NpgsqlCommand($"select b from {table} where id = 1", conn))
            {
                var back = (byte[])(await select.ExecuteScalarAsync())!;
                Assert.Equal(BigByteaLength, back.Length);
                Assert.True(data.AsSpan().SequenceEqual(back), "bytea read back through the proxy differs from what was inserted");
            }

            // Same value, read straight from the server.
            Assert.Equal(expectedHash, await _fixture.Primary.PsqlAsync($"select encode(sha256(b), 'hex') from {table} where id = 1"));
            Assert.Equal(1, await ScalarAsync(conn, "select 1"));
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop table if exists {table}");
        }
    }
}
