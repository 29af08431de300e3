using FastPool.IntegrationTests.Infrastructure;
using Npgsql;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Protocol;

/// <summary>The unix-domain socket listener (unix_socket_dir), named .s.PGSQL.&lt;port&gt; like PostgreSQL's.</summary>
[Collection(PostgresCollection.Name)]
public sealed class UnixSocketTests
{
    private readonly PostgresFixture _fixture;

    public UnixSocketTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task UnixSocket_NpgsqlAndPsql_Connect_AlongsideTcp()
    {
        var dir = Directory.CreateTempSubdirectory("fp-uds-").FullName;
        try
        {
            await using (var proxy = ProxyHost.Start(_fixture.Primary, c => c with { UnixSocketDir = dir }))
            {
                var socketPath = Path.Combine(dir, $".s.PGSQL.{Invariant(proxy.Port)}");
                Assert.True(File.Exists(socketPath), $"{socketPath} missing; dir has: {string.Join(", ", Directory.GetFileSystemEntries(dir))}");

                var b = new NpgsqlConnectionStringBuilder
                {
                    Host = dir,
                    Port = proxy.Port,
                    Database = "postgres",
                    Username = "postgres",
                    Pooling = false,
                    Timeout = 15,
                    ApplicationName = "over-unix-socket",
                };
                await using (var conn = new NpgsqlConnection(b.ConnectionString))
                {
                    await conn.OpenAsync();
                    Assert.Equal(42, await ScalarAsync(conn, "select 42"));
                    Assert.Equal("over-unix-socket", await ScalarAsync(conn, "show application_name"));
                    Assert.NotEqual(conn.ProcessID, await ScalarAsync<int>(conn, "select pg_backend_pid()"));

                    // A session over the socket is as complete as over TCP: extended protocol, errors, recovery.
                    await using var cmd = new NpgsqlCommand("select $1::text || '!'", conn);
                    cmd.Parameters.AddWithValue("unix");
                    Assert.Equal("unix!", await cmd.ExecuteScalarAsync());
                    var ex = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(conn, "select 1/0"));
                    Assert.Equal(PostgresErrorCodes.DivisionByZero, ex.SqlState);
                    Assert.Equal(1, await ScalarAsync(conn, "select 1"));
                }

                // Cancel over the unix socket too (Npgsql sends the CancelRequest to the same socket path).
                await using (var conn = new NpgsqlConnection(b.ConnectionString))
                {
                    await conn.OpenAsync();
                    var serverPid = await ScalarAsync<int>(conn, "select pg_backend_pid()");
                    await using var sleep = new NpgsqlCommand("select pg_sleep(30)", conn);
                    var running = sleep.ExecuteNonQueryAsync();
                    await WaitUntilActiveAsync(_fixture.Primary, serverPid);
                    sleep.Cancel();
                    await AssertQueryCanceledAsync(running, TimeSpan.FromSeconds(10));
                    Assert.Equal(3, await ScalarAsync(conn, "select 3"));
                }

                var psql = await RunToolAsync(
                    "psql",
                    ["-X", "-h", dir, "-p", Invariant(proxy.Port), "-U", "postgres", "-d", "postgres", "-Atc", "select 40+2"],
                    TimeSpan.FromSeconds(30));
                Assert.True(psql.ExitCode == 0, psql.ToString());
                Assert.Equal("42", psql.StandardOutput.TrimEnd('\n'));

                // TCP keeps working next to it.
                await using var tcp = await proxy.OpenAsync();
                Assert.Equal(1, await ScalarAsync(tcp, "select 1"));
            }

            // Shutdown removes the socket file, as PostgreSQL and PgBouncer do.
            Assert.Empty(Directory.GetFileSystemEntries(dir, ".s.PGSQL.*"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
