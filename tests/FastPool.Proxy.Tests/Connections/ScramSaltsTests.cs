using FastPool.Protocol.Scram;
using FastPool.Proxy.Connections;

namespace FastPool.Proxy.Tests.Connections;

public sealed class ScramSaltsTests
{
    [Fact]
    public void SaltsAreStablePerUser_AndFakeAndPlainSecretsShareThem()
    {
        var salts = new ScramSalts(new byte[32]);

        Assert.Equal(salts.SaltFor("alice"), salts.SaltFor("alice"));
        Assert.NotEqual(salts.SaltFor("alice"), salts.SaltFor("bob"));
        Assert.Equal(ScramSha256.DefaultSaltLength, salts.SaltFor("alice").Length);

        // An unknown user's exchange shows the same salt and iterations a plain-password user's would.
        var fake = salts.Fake("ghost");
        var plain = salts.FromPlain("ghost", "pw");
        Assert.Equal(plain.Salt, fake.Salt);
        Assert.Equal(plain.Iterations, fake.Iterations);
        Assert.Equal(fake.StoredKey, salts.Fake("ghost").StoredKey);
        Assert.NotEqual(plain.StoredKey, fake.StoredKey);

        // A different process key gives different salts.
        Assert.NotEqual(salts.SaltFor("alice"), new ScramSalts(Enumerable.Repeat((byte)1, 32).ToArray()).SaltFor("alice"));
    }
}
