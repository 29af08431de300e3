using System.Text;
using FastPool.Protocol.Scram;

namespace FastPool.Protocol.Tests.Scram;

/// <summary>Whole exchanges: FastPool's SCRAM server replaying RFC 7677, and its client against its server.</summary>
public sealed class ScramExchangeTests
{
    private static readonly byte[] s_salt = Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ==");

    [Fact]
    public void Server_ReplaysTheRfc7677Exchange()
    {
        var server = new ScramServer(ScramSha256.DeriveSecret("pencil", s_salt, 4096), canSucceed: true, serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");

        Assert.True(server.TryServerFirst("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"u8, out var serverFirst, out var error), error);
        Assert.Equal("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", Encoding.UTF8.GetString(serverFirst));
        Assert.True(server.TryServerFinal("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="u8, out var serverFinal, out error), error);
        Assert.Equal("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", Encoding.UTF8.GetString(serverFinal!));
    }

    [Theory]
    [InlineData("secret", "secret", true, true)]
    [InlineData("secret", "wrong", true, false)]
    [InlineData("secret", "secret", false, false)]
    [InlineData("p\u00e4ss w\u00f6rd", "p\u00e4ss\u00A0w\u00f6rd", true, true)]
    public void Client_AgainstServer(string stored, string typed, bool canSucceed, bool accepted)
    {
        var server = new ScramServer(ScramSha256.DeriveSecret(stored, s_salt, 4096), canSucceed);
        var client = new ScramClient(typed);

        Assert.True(server.TryServerFirst(client.ClientFirst(), out var serverFirst, out var error), error);
        Assert.True(client.TryClientFinal(serverFirst, out var clientFinal, out error), error);
        Assert.True(server.TryServerFinal(clientFinal, out var serverFinal, out error), error);
        Assert.Equal(accepted, serverFinal is not null);
        if (serverFinal is not null)
        {
            Assert.True(client.TryVerifyServerFinal(serverFinal, out error), error);
            Assert.True(client.ServerVerified);
        }
    }

    [Theory]
    [InlineData("secret", true)]
    [InlineData("wrong", false)]
    public void Plus_ClientBoundToTheSameCertificate_LogsIn_AWrongPasswordStillFailsAtTheProof(string typed, bool accepted)
    {
        byte[] binding = [.. Enumerable.Range(0, 32).Select(i => (byte)i)];
        var server = new ScramServer(ScramSha256.DeriveSecret("secret", s_salt, 4096), canSucceed: true, binding);
        var client = new ScramClient(typed, ScramMessages.Gs2HeaderServerEndPoint, binding);

        Assert.True(server.CanBindChannel);
        Assert.True(server.TryServerFirst(client.ClientFirst(), plusSelected: true, out var serverFirst, out var error), error);
        Assert.True(client.TryClientFinal(serverFirst, out var clientFinal, out error), error);
        Assert.True(server.TryServerFinal(clientFinal, out var serverFinal, out error), error);
        Assert.Equal(accepted, serverFinal is not null);
        Assert.Equal(accepted, server.VerifiedKeys is not null);
        if (serverFinal is not null)
        {
            Assert.True(client.TryVerifyServerFinal(serverFinal, out error), error);
        }
    }

    [Fact]
    public void Plus_ClientThatSawAnotherCertificate_IsRefusedBeforeTheProof()
    {
        // A man in the middle terminates the client's TLS with its own certificate: the hashes differ.
        var server = new ScramServer(ScramSha256.DeriveSecret("secret", s_salt, 4096), canSucceed: true, new byte[32]);
        var client = new ScramClient("secret", ScramMessages.Gs2HeaderServerEndPoint, [.. Enumerable.Repeat((byte)7, 32)]);

        Assert.True(server.TryServerFirst(client.ClientFirst(), plusSelected: true, out var serverFirst, out var error), error);
        Assert.True(client.TryClientFinal(serverFirst, out var clientFinal, out error), error);
        Assert.False(server.TryServerFinal(clientFinal, out _, out error));
        Assert.Contains("channel binding check failed", error, StringComparison.Ordinal);
        Assert.Null(server.VerifiedKeys);
    }

    [Fact]
    public void Plus_Offered_ClientSayingTheServerCannotBind_IsADowngrade()
    {
        var server = new ScramServer(ScramSha256.DeriveSecret("secret", s_salt, 4096), canSucceed: true, new byte[32]);
        var client = new ScramClient("secret", ScramMessages.Gs2HeaderBindingNotOffered, []);
        Assert.False(server.TryServerFirst(client.ClientFirst(), plusSelected: false, out _, out var error));
        Assert.Contains("negotiation", error, StringComparison.Ordinal);

        // Without binding data, -PLUS cannot be selected at all.
        var plain = new ScramServer(ScramSha256.DeriveSecret("secret", s_salt, 4096), canSucceed: true);
        Assert.False(plain.CanBindChannel);
        Assert.False(plain.TryServerFirst(new ScramClient("secret", ScramMessages.Gs2HeaderServerEndPoint, new byte[32]).ClientFirst(), plusSelected: true, out _, out _));
    }

    [Fact]
    public void Client_RejectsAForgedServerSignature_AndServerErrors()
    {
        var client = new ScramClient("secret", "abc");
        Assert.True(client.TryClientFinal("r=abcdef,s=c2FsdA==,i=4096"u8, out _, out var error), error);

        Assert.False(client.TryVerifyServerFinal(Encoding.ASCII.GetBytes("v=" + Convert.ToBase64String(new byte[32])), out error));
        Assert.Contains("signature", error, StringComparison.Ordinal);
        Assert.False(client.TryVerifyServerFinal("e=invalid-proof"u8, out error));
        Assert.Contains("invalid-proof", error, StringComparison.Ordinal);
        Assert.False(client.ServerVerified);
    }

    [Fact]
    public void Server_RefusesMessagesOutOfOrder()
    {
        var server = new ScramServer(ScramSha256.DeriveSecret("secret", s_salt, 4096), canSucceed: true);
        Assert.False(server.TryServerFinal("c=biws,r=abc,p=AAAA"u8, out _, out _));
        Assert.True(server.TryServerFirst("n,,n=,r=abc"u8, out _, out _));
        Assert.False(server.TryServerFirst("n,,n=,r=abc"u8, out _, out _));
    }
}
