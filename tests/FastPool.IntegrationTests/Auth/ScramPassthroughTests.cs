using System.Text;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.IntegrationTests.Protocol;
using FastPool.Protocol.Scram;
using FastPool.Proxy.Configuration;
using Npgsql;
using static FastPool.IntegrationTests.Auth.AuthTestSupport;
using RawPgClient = FastPool.IntegrationTests.Resilience.RawPgClient;

namespace FastPool.IntegrationTests.Auth;

/// <summary>
/// SCRAM passthrough: FastPool holds only the user's SCRAM secret (copied from pg_authid, or returned by
/// auth_query), no password anywhere, and the server demands SCRAM. The keys recovered from the client's proof log
/// FastPool in to the server.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ScramPassthroughTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);
    private readonly PostgresFixture _fixture;

    public ScramPassthroughTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Theory]
    [InlineData(AuthType.ScramSha256)]
    [InlineData(AuthType.Md5)]
    public async Task OnlyTheScramSecretOnDisk_NpgsqlAndPsqlLogInAndQueriesRun(AuthType authType)
    {
        var user = PostgresFixture.ScramUser;
        var secret = await StoredSecretAsync(_fixture, user);
        Assert.StartsWith("SCRAM-SHA-256$", secret, StringComparison.Ordinal);
        await using var proxy = StartProxy(_fixture, authType, new Dictionary<string, string> { [user] = secret });
        Assert.Null(proxy.Config.FallbackDatabase!.Password);

        await using (var conn = new NpgsqlConnection(proxy.ConnectionString(Database, user, PostgresFixture.ScramPassword)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("select current_user, sum(g) from generate_series(1, 10) g", conn);
            await using var reader = await cmd.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal(user, reader.GetString(0));
            Assert.Equal(55L, reader.GetInt64(1));
        }

        var psql = await ProtocolTestSupport.RunToolAsync(
            "psql",
            ["-X", "-Atc", "select current_user", $"host=127.0.0.1 port={proxy.Port} dbname={Database} user={user} password={PostgresFixture.ScramPassword} sslmode=disable"],
            TimeSpan.FromSeconds(60));
        Assert.True(psql.ExitCode == 0, psql.ToString());
        Assert.Equal(user, psql.StandardOutput.Trim());

        await AssertPasswordFailureAsync(proxy, user, "wrong");
        Assert.Contains(proxy.Logs, l => l.Contains("SCRAM-SHA-256 passthrough", StringComparison.Ordinal));
        await AssertLogsHoldNoSecretAsync(proxy, secret);
    }

    [Fact]
    public async Task OnlyTheMd5SecretOnDisk_AnswersTheServersMd5Challenge()
    {
        // Not SCRAM, but the same promise: an md5 secret copied from pg_authid is enough for both sides.
        var user = PostgresFixture.Md5User;
        var secret = await StoredSecretAsync(_fixture, user);
        await using var proxy = StartProxy(_fixture, AuthType.Md5, new Dictionary<string, string> { [user] = secret });

        Assert.Equal(user, await CurrentUserAsync(proxy, user, PostgresFixture.Md5Password));
        Assert.DoesNotContain(proxy.Logs, l => l.Contains(secret, StringComparison.Ordinal));
    }

    [Fact]
    public async Task LaterServerConnections_LogInWithTheKeptKeys()
    {
        // Several clients at once need several servers; each server login uses the keys of the latest client login.
        var user = PostgresFixture.ScramUser;
        var secret = await StoredSecretAsync(_fixture, user);
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string> { [user] = secret });

        var connections = new List<NpgsqlConnection>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var conn = new NpgsqlConnection(proxy.ConnectionString(Database, user, PostgresFixture.ScramPassword));
                await conn.OpenAsync();
                connections.Add(conn);
            }

            var pids = new HashSet<int>();
            foreach (var conn in connections)
            {
                await using var cmd = new NpgsqlCommand("select pg_backend_pid()", conn);
                pids.Add((int)(await cmd.ExecuteScalarAsync())!);
            }

            Assert.Equal(3, pids.Count);
        }
        finally
        {
            foreach (var conn in connections)
            {
                await conn.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task ScramSecretFromAuthQuery_PassesThroughToo()
    {
        await AuthQueryTests.CreateLookupFunctionAsync(_fixture);
        await using var proxy = AuthQueryTests.StartWithFunction(_fixture, AuthType.ScramSha256);

        Assert.Equal(PostgresFixture.ScramUser, await CurrentUserAsync(proxy, PostgresFixture.ScramUser, PostgresFixture.ScramPassword));
        await AssertLogsHoldNoSecretAsync(proxy, await StoredSecretAsync(_fixture, PostgresFixture.ScramUser));
    }

    [Fact]
    public async Task SecretWithAnotherSalt_ClientIsAccepted_ButTheServerLoginFailsWithAReason()
    {
        // A secret for the right password but not the server's (another salt): FastPool cannot pass it through.
        var user = PostgresFixture.ScramUser;
        var secret = ScramSha256.DeriveSecret(PostgresFixture.ScramPassword, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], 4096).Format();
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string> { [user] = secret });

        await using var conn = new NpgsqlConnection(proxy.ConnectionString(Database, user, PostgresFixture.ScramPassword));
        var ex = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("select 1", conn);
            await cmd.ExecuteScalarAsync();
        });
        var pg = Assert.IsType<PostgresException>(ex);
        Assert.Contains("another salt or iteration count", pg.MessageText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HandDrivenLogin_PassesThrough_AndNoProofNonceOrKeyIsLogged()
    {
        // The exchange is driven by hand so the proof, the nonces and the ClientKey are known and can be grepped for.
        var user = PostgresFixture.ScramUser;
        var secret = await StoredSecretAsync(_fixture, user);
        Assert.True(ScramSecret.TryParse(secret, out var parsed));
        await using var proxy = StartProxy(_fixture, AuthType.ScramSha256, new Dictionary<string, string> { [user] = secret });

        await using var client = await RawPgClient.ConnectAsync(proxy.Port);
        await client.SendAsync(RawPgClient.Startup(Database, user));
        var sasl = await client.ReadMessageAsync(s_timeout);
        Assert.True(sasl is { Type: 'R' } && sasl.Int32At(0) == 10, $"expected AuthenticationSASL, got {sasl}");
        var scram = new ScramClient(PostgresFixture.ScramPassword);
        await client.SendAsync(RawPgClient.Message('p', [.. "SCRAM-SHA-256\0"u8, .. RawPgClient.Int32(scram.ClientFirst().Length), .. scram.ClientFirst()]));
        var cont = await client.ReadMessageAsync(s_timeout);
        Assert.True(cont is { Type: 'R' } && cont.Int32At(0) == 11, $"expected SASLContinue, got {cont}");
        var serverFirst = Encoding.UTF8.GetString(cont.Body, 4, cont.Body.Length - 4);
        Assert.True(scram.TryClientFinal(Encoding.UTF8.GetBytes(serverFirst), out var clientFinal, out var error), error);
        await client.SendAsync(RawPgClient.Message('p', clientFinal));
        var login = await client.ReadUntilAsync('Z', s_timeout);
        Assert.DoesNotContain(login, m => m.Type == 'E');

        await client.SendAsync(RawPgClient.Query("select current_user"));
        var rows = await client.ReadUntilAsync('Z', s_timeout);
        var row = Assert.Single(rows, m => m.Type == 'D');
        Assert.Contains(user, Encoding.UTF8.GetString(row.Body), StringComparison.Ordinal);

        var finalText = Encoding.UTF8.GetString(clientFinal);
        var nonce = serverFirst.Split(',')[0][2..];
        var clientKey = ScramSha256.ClientKey(ScramSha256.SaltedPassword(PostgresFixture.ScramPassword, parsed.Salt, parsed.Iterations));
        Assert.Equal(parsed.StoredKey, ScramSha256.StoredKey(clientKey));
        foreach (var text in new[] { finalText[(finalText.IndexOf(",p=", StringComparison.Ordinal) + 3)..], nonce, Convert.ToBase64String(clientKey), Convert.ToHexString(clientKey) })
        {
            Assert.DoesNotContain(proxy.Logs, l => l.Contains(text, StringComparison.OrdinalIgnoreCase));
        }

        await AssertLogsHoldNoSecretAsync(proxy, secret);
    }

    /// <summary>Neither the secret, its parts, nor the password appear in any log line.</summary>
    private static Task AssertLogsHoldNoSecretAsync(ProxyHost proxy, string secret)
    {
        Assert.True(ScramSecret.TryParse(secret, out var parsed));
        var forbidden = new[]
        {
            secret,
            Convert.ToBase64String(parsed.Salt),
            Convert.ToBase64String(parsed.StoredKey),
            Convert.ToBase64String(parsed.ServerKey),
            PostgresFixture.ScramPassword,
        };
        foreach (var text in forbidden)
        {
            Assert.DoesNotContain(proxy.Logs, l => l.Contains(text, StringComparison.Ordinal));
        }

        return Task.CompletedTask;
    }
}
