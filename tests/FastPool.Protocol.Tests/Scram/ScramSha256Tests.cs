using System.Text;
using FastPool.Protocol.Scram;

namespace FastPool.Protocol.Tests.Scram;

/// <summary>The SCRAM-SHA-256 math, checked against the exchange in RFC 7677 section 3.</summary>
public sealed class ScramSha256Tests
{
    private const string Password = "pencil";
    private const string ClientNonce = "rOprNGfwEbeRWgbNEkqO";
    private const string CombinedNonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    private const string Salt = "W22ZaJ0SNY7soEsUEjb6gQ==";
    private const string ClientFirst = "n,,n=user,r=" + ClientNonce;
    private const string ServerFirst = "r=" + CombinedNonce + ",s=" + Salt + ",i=4096";
    private const string ClientFinal = "c=biws,r=" + CombinedNonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    private const string ServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    private static byte[] AuthMessage => Encoding.UTF8.GetBytes("n=user,r=" + ClientNonce + "," + ServerFirst + ",c=biws,r=" + CombinedNonce);

    [Fact]
    public void Rfc7677Vector_ClientSide_ProducesTheRfcProofAndVerifiesTheServer()
    {
        var salted = ScramSha256.SaltedPassword(Password, Convert.FromBase64String(Salt), 4096);
        var clientKey = ScramSha256.ClientKey(salted);
        var proof = ScramSha256.ClientProof(clientKey, ScramSha256.StoredKey(clientKey), AuthMessage);

        Assert.Equal(ClientFinal, "c=biws,r=" + CombinedNonce + ",p=" + Convert.ToBase64String(proof));
        Assert.Equal(ServerFinal, ScramMessages.ServerFinal(ScramSha256.ServerSignature(ScramSha256.ServerKey(salted), AuthMessage)));
    }

    [Fact]
    public void Rfc7677Vector_ServerSide_AcceptsTheRfcProof_AndRejectsAnyOther()
    {
        var secret = ScramSha256.DeriveSecret(Password, Convert.FromBase64String(Salt), 4096);

        Assert.True(ScramMessages.TryParseClientFirst(ClientFirst, out var first, out var error), error);
        Assert.Equal("n,,", first.Gs2Header);
        Assert.Equal(ClientNonce, first.Nonce);
        Assert.Equal(ServerFirst, ScramMessages.ServerFirst(CombinedNonce, secret.Salt, secret.Iterations));
        Assert.True(ScramMessages.TryParseClientFinal(ClientFinal, first.Gs2Header, CombinedNonce, out var withoutProof, out var proof, out error), error);
        var authMessage = Encoding.UTF8.GetBytes(first.Bare + "," + ServerFirst + "," + withoutProof);
        Assert.Equal(AuthMessage, authMessage);

        Assert.True(ScramSha256.VerifyClientProof(proof, secret.StoredKey, authMessage));
        proof[0] ^= 1;
        Assert.False(ScramSha256.VerifyClientProof(proof, secret.StoredKey, authMessage));
        Assert.False(ScramSha256.VerifyClientProof(proof.AsSpan(1), secret.StoredKey, authMessage));
    }

    [Fact]
    public void DerivedSecret_RoundTripsThroughTheTextForm_AndToStringHidesIt()
    {
        var secret = ScramSha256.DeriveSecret(Password, Convert.FromBase64String(Salt), 4096);
        var text = secret.Format();

        Assert.StartsWith("SCRAM-SHA-256$4096:" + Salt + "$", text, StringComparison.Ordinal);
        Assert.True(ScramSecret.TryParse(text, out var parsed));
        Assert.Equal(secret.StoredKey, parsed.StoredKey);
        Assert.Equal(secret.ServerKey, parsed.ServerKey);
        Assert.DoesNotContain(Convert.ToBase64String(secret.StoredKey), secret.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void PostgresSecret_Parses()
    {
        // The layout of pg_authid.rolpassword; salt "fastpool-salt", arbitrary 32-byte keys (a real one is used in the integration tests).
        const string stored = "SCRAM-SHA-256$4096:ZmFzdHBvb2wtc2FsdA==$hL1T0rA5nUqXxK0H8xkqUjUHU9Ch0x1ox0Lr8s1x5FY=:v6PxYw3c6W8mNf0hZkKpE1uVQvKc0b3Kc0i2W6Lz2kE=";

        Assert.True(ScramSecret.TryParse(stored, out var secret));
        Assert.Equal(4096, secret.Iterations);
        Assert.Equal("fastpool-salt"u8.ToArray(), secret.Salt);
        Assert.Equal(32, secret.StoredKey.Length);
    }

    [Theory]
    [InlineData("")]
    [InlineData("md5abcdef")]
    [InlineData("SCRAM-SHA-256$")]
    [InlineData("SCRAM-SHA-256$4096:c2FsdA==")]
    [InlineData("SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA")]
    [InlineData("SCRAM-SHA-256$0:c2FsdA==$hL1T0rA5nUqXxK0H8xkqUjUHU9Ch0x1ox0Lr8s1x5FY=:v6PxYw3c6W8mNf0hZkKpE1uVQvKc0b3Kc0i2W6Lz2kE=")]
    [InlineData("SCRAM-SHA-256$-1:c2FsdA==$hL1T0rA5nUqXxK0H8xkqUjUHU9Ch0x1ox0Lr8s1x5FY=:v6PxYw3c6W8mNf0hZkKpE1uVQvKc0b3Kc0i2W6Lz2kE=")]
    [InlineData("SCRAM-SHA-256$4096:$hL1T0rA5nUqXxK0H8xkqUjUHU9Ch0x1ox0Lr8s1x5FY=:v6PxYw3c6W8mNf0hZkKpE1uVQvKc0b3Kc0i2W6Lz2kE=")]
    [InlineData("SCRAM-SHA-256$4096:c2FsdA==$not base64!:v6PxYw3c6W8mNf0hZkKpE1uVQvKc0b3Kc0i2W6Lz2kE=")]
    [InlineData("SCRAM-SHA-256$4096:c2FsdA==$hL1T0rA5nUqXxK0H8xkqUjUHU9Ch0x1ox0Lr8s1x5FY=")]
    public void MalformedSecrets_AreRejected(string text)
    {
        Assert.False(ScramSecret.TryParse(text, out _));
    }

    [Theory]
    [InlineData("pencil", "pencil")]
    [InlineData("I\u00ADX", "IX")]
    [InlineData("a\u00A0b", "a b")]
    [InlineData("caf\u00e9 \u00df", "caf\u00e9 \u00df")]
    [InlineData("ctl\u0007", "ctl\u0007")]
    [InlineData("\u0627\u0031", "\u0627\u0031")]
    [InlineData("\u200Bpw", "pw")]
    [InlineData("\uE000pw", "\uE000pw")]
    public void SaslPrep_MapsOrKeepsTheRawPassword(string input, string expected)
    {
        Assert.Equal(expected, SaslPrep.Normalize(input));
    }
}
