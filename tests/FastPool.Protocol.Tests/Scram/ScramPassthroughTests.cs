using FastPool.Protocol.Scram;

namespace FastPool.Protocol.Tests.Scram;

/// <summary>
/// SCRAM passthrough at the protocol level: the keys a server exchange recovers from a client's proof log in to
/// another server holding the same secret, and are refused (with a reason) by one with another salt.
/// </summary>
public sealed class ScramPassthroughTests
{
    private static readonly byte[] s_salt = Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ==");

    private static ScramKeys? RunClientLogin(ScramSecret secret, string password)
    {
        var front = new ScramServer(secret, canSucceed: true);
        var client = new ScramClient(password);
        Assert.True(front.TryServerFirst(client.ClientFirst(), out var serverFirst, out var error), error);
        Assert.True(client.TryClientFinal(serverFirst, out var clientFinal, out error), error);
        Assert.True(front.TryServerFinal(clientFinal, out _, out error), error);
        return front.VerifiedKeys;
    }

    [Fact]
    public void VerifiedKeys_HoldTheClientKeyOfTheSecret_AndLogInToAServerWithTheSameSecret()
    {
        var secret = ScramSha256.DeriveSecret("pencil", s_salt, 4096);
        var keys = RunClientLogin(secret, "pencil");
        Assert.NotNull(keys);
        Assert.Equal(secret.StoredKey, ScramSha256.StoredKey(keys.ClientKey));

        // The real server: same secret, fresh nonces. FastPool answers it with the keys, no password.
        var back = new ScramServer(secret, canSucceed: true);
        var passthrough = new ScramClient(keys, ScramMessages.Gs2HeaderNoBinding, []);
        Assert.True(back.TryServerFirst(passthrough.ClientFirst(), out var serverFirst, out var error), error);
        Assert.True(passthrough.TryClientFinal(serverFirst, out var clientFinal, out error), error);
        Assert.True(back.TryServerFinal(clientFinal, out var serverFinal, out error), error);
        Assert.NotNull(serverFinal);
        Assert.True(passthrough.TryVerifyServerFinal(serverFinal, out error), error);
        Assert.Equal("SCRAM keys (redacted)", keys.ToString());
    }

    [Fact]
    public void WrongPassword_RecoversNoKeys()
    {
        Assert.Null(RunClientLogin(ScramSha256.DeriveSecret("pencil", s_salt, 4096), "wrong"));
    }

    [Fact]
    public void ServerWithAnotherSaltOrIterationCount_IsRefusedBeforeAnyProofIsSent()
    {
        var keys = RunClientLogin(ScramSha256.DeriveSecret("pencil", s_salt, 4096), "pencil")!;
        foreach (var other in new[] { ScramSha256.DeriveSecret("pencil", new byte[16], 4096), ScramSha256.DeriveSecret("pencil", s_salt, 4097) })
        {
            var back = new ScramServer(other, canSucceed: true);
            var passthrough = new ScramClient(keys, ScramMessages.Gs2HeaderNoBinding, []);
            Assert.True(back.TryServerFirst(passthrough.ClientFirst(), out var serverFirst, out var error), error);
            Assert.False(passthrough.TryClientFinal(serverFirst, out _, out error));
            Assert.Contains("another salt or iteration count", error, StringComparison.Ordinal);
        }
    }
}
