using FastPool.Protocol.Scram;

namespace FastPool.Protocol.Tests.Scram;

/// <summary>The SCRAM attribute messages (RFC 5802 section 7), valid and malformed.</summary>
public sealed class ScramMessagesTests
{
    [Theory]
    [InlineData("n,,n=,r=abc", "n,,", "abc")]
    [InlineData("y,,n=user,r=abc", "y,,", "abc")]
    [InlineData("n,,n=user,r=abc,x=ext", "n,,", "abc")]
    public void ClientFirst_Valid(string message, string header, string nonce)
    {
        Assert.True(ScramMessages.TryParseClientFirst(message, out var first, out var error), error);
        Assert.Equal(header, first.Gs2Header);
        Assert.Equal(nonce, first.Nonce);
        Assert.Equal(message[3..], first.Bare);
    }

    [Theory]
    [InlineData("")]
    [InlineData("n,")]
    [InlineData("p=tls-server-end-point,,n=,r=abc")]
    [InlineData("x,,n=,r=abc")]
    [InlineData("n,a=admin,n=,r=abc")]
    [InlineData("n,,m=ext,n=,r=abc")]
    [InlineData("n,,r=abc")]
    [InlineData("n,,n=")]
    [InlineData("n,,n=,r=")]
    [InlineData("n,,n=,r=ab c")]
    [InlineData("n,,n=,r=abc,")]
    [InlineData("n,,n=,r=abc,1=x")]
    [InlineData("n,,n=,x=abc")]
    public void ClientFirst_Malformed(string message)
    {
        Assert.False(ScramMessages.TryParseClientFirst(message, out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Theory]
    // SCRAM-SHA-256-PLUS selected: only a tls-server-end-point binding will do.
    [InlineData("p=tls-server-end-point,,n=,r=abc", true, true, "p=tls-server-end-point,,")]
    [InlineData("n,,n=,r=abc", true, true, null)]
    [InlineData("y,,n=,r=abc", true, true, null)]
    [InlineData("p=tls-unique,,n=,r=abc", true, true, null)]
    [InlineData("p=tls-server-end-point,a=x,n=,r=abc", true, true, null)]
    // SCRAM-SHA-256 selected with -PLUS offered: "y" is a downgrade, "p" contradicts the mechanism.
    [InlineData("n,,n=,r=abc", false, true, "n,,")]
    [InlineData("y,,n=,r=abc", false, true, null)]
    [InlineData("p=tls-server-end-point,,n=,r=abc", false, true, null)]
    // -PLUS not offered: "y" is the right answer of a client that could bind.
    [InlineData("y,,n=,r=abc", false, false, "y,,")]
    [InlineData("p=tls-server-end-point,,n=,r=abc", false, false, null)]
    [InlineData("p,,n=,r=abc", true, true, null)]
    [InlineData("p=,,n=,r=abc", true, true, null)]
    [InlineData(",,n=,r=abc", false, false, null)]
    public void ClientFirst_ChannelBindingFlag_MustFitTheMechanism(string message, bool plusSelected, bool plusOffered, string? header)
    {
        bool ok = ScramMessages.TryParseClientFirst(message, plusSelected, plusOffered, out var first, out var error);
        Assert.True(ok == (header is not null), error ?? "parsed");
        if (ok)
        {
            Assert.Equal(header, first!.Gs2Header);
            Assert.Equal(message[header!.Length..], first.Bare);
            Assert.Equal(header[0] == 'p', first.BindsChannel);
        }
        else
        {
            Assert.False(string.IsNullOrEmpty(error));
        }
    }

    [Fact]
    public void ClientFinal_ChannelBound_CIsTheHeaderAndTheBindingData()
    {
        const string header = "p=tls-server-end-point,,";
        byte[] binding = [1, 2, 3, 4];
        var proof = Convert.ToBase64String(new byte[32]);
        var c = Convert.ToBase64String([.. System.Text.Encoding.ASCII.GetBytes(header), .. binding]);
        Assert.True(ScramMessages.TryParseClientFinal($"c={c},r=abcdef,p={proof}", header, binding, "abcdef", out _, out _, out var error), error);

        // Another certificate's hash, the header alone, or binding data with an "n" header: all refused.
        var other = Convert.ToBase64String([.. System.Text.Encoding.ASCII.GetBytes(header), 1, 2, 3, 5]);
        Assert.False(ScramMessages.TryParseClientFinal($"c={other},r=abcdef,p={proof}", header, binding, "abcdef", out _, out _, out error));
        Assert.Contains("channel binding", error, StringComparison.Ordinal);
        var bare = Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes(header));
        Assert.False(ScramMessages.TryParseClientFinal($"c={bare},r=abcdef,p={proof}", header, binding, "abcdef", out _, out _, out _));
        Assert.False(ScramMessages.TryParseClientFinal($"c={c},r=abcdef,p={proof}", "n,,", "abcdef", out _, out _, out _));
    }

    [Fact]
    public void ClientFinal_Valid_SplitsOffTheProof()
    {
        var proof = Convert.ToBase64String(new byte[32]);
        Assert.True(ScramMessages.TryParseClientFinal($"c=biws,r=abcdef,x=1,p={proof}", "n,,", "abcdef", out var withoutProof, out var bytes, out var error), error);
        Assert.Equal("c=biws,r=abcdef,x=1", withoutProof);
        Assert.Equal(32, bytes.Length);

        // "y,," is "eSws" in base64.
        Assert.True(ScramMessages.TryParseClientFinal($"c=eSws,r=abcdef,p={proof}", "y,,", "abcdef", out _, out _, out error), error);
    }

    [Theory]
    [InlineData("c=biws,r=abcdef")]
    [InlineData("c=eSws,r=abcdef,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("c=biws,r=abcxyz,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("c=biws,r=abcdef,p=AAAA")]
    [InlineData("c=biws,r=abcdef,p=!!!!")]
    [InlineData("c=biws,r=abcdef,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,x=1")]
    [InlineData("r=abcdef,c=biws,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("c=biws")]
    [InlineData("garbage")]
    public void ClientFinal_Malformed(string message)
    {
        Assert.False(ScramMessages.TryParseClientFinal(message, "n,,", "abcdef", out _, out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void ServerFirst_Valid_AndMalformed()
    {
        Assert.True(ScramMessages.TryParseServerFirst("r=abcXYZ,s=c2FsdA==,i=4096", "abc", out var nonce, out var salt, out int iterations, out var error), error);
        Assert.Equal("abcXYZ", nonce);
        Assert.Equal("salt"u8.ToArray(), salt);
        Assert.Equal(4096, iterations);

        Assert.False(ScramMessages.TryParseServerFirst("r=abc,s=c2FsdA==,i=4096", "abc", out _, out _, out _, out _));
        Assert.False(ScramMessages.TryParseServerFirst("r=xyzXYZ,s=c2FsdA==,i=4096", "abc", out _, out _, out _, out _));
        Assert.False(ScramMessages.TryParseServerFirst("r=abcXYZ,s=,i=4096", "abc", out _, out _, out _, out _));
        Assert.False(ScramMessages.TryParseServerFirst("r=abcXYZ,s=c2FsdA==,i=0", "abc", out _, out _, out _, out _));
        Assert.False(ScramMessages.TryParseServerFirst("r=abcXYZ,s=c2FsdA==", "abc", out _, out _, out _, out _));
        Assert.False(ScramMessages.TryParseServerFirst("m=x,r=abcXYZ,s=c2FsdA==,i=1", "abc", out _, out _, out _, out _));
    }

    [Fact]
    public void ServerFinal_SignatureOrError()
    {
        var signature = Convert.ToBase64String(new byte[32]);
        Assert.True(ScramMessages.TryParseServerFinal("v=" + signature, out var bytes, out var serverError, out var error), error);
        Assert.Equal(32, bytes!.Length);
        Assert.Null(serverError);

        Assert.True(ScramMessages.TryParseServerFinal("e=invalid-proof", out bytes, out serverError, out error), error);
        Assert.Null(bytes);
        Assert.Equal("invalid-proof", serverError);

        Assert.False(ScramMessages.TryParseServerFinal("v=AAAA", out _, out _, out _));
        Assert.False(ScramMessages.TryParseServerFinal("x=1", out _, out _, out _));
    }

    [Fact]
    public void Decode_RejectsInvalidUtf8AndNul()
    {
        Assert.True(ScramMessages.TryDecode("n,,n=\u00e9,r=a"u8, out var text));
        Assert.Equal("n,,n=\u00e9,r=a", text);
        Assert.False(ScramMessages.TryDecode([(byte)'n', 0xC3, 0x28], out _));
        Assert.False(ScramMessages.TryDecode("n,,\0"u8, out _));
    }
}
