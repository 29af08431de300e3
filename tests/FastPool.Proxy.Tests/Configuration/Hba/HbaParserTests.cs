using System.Net;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Configuration.Hba;

namespace FastPool.Proxy.Tests.Configuration.Hba;

public sealed class HbaParserTests
{
    private static readonly IPAddress s_loopback = IPAddress.Parse("127.0.0.1");

    private static HbaRules Parse(string text, Func<string, (string?, string?)>? readFile = null)
    {
        var errors = new List<ConfigDiagnostic>();
        var rules = HbaParser.Parse(text, "/etc/fastpool/pg_hba.conf", errors, readFile);
        Assert.Empty(errors);
        return rules;
    }

    private static ConfigDiagnostic ParseError(string text)
    {
        var errors = new List<ConfigDiagnostic>();
        HbaParser.Parse(text, "/etc/fastpool/pg_hba.conf", errors, _ => (null, "no such file"));
        return Assert.Single(errors);
    }

    private static HbaMethod? MethodFor(HbaRules rules, string? address, string database, string user) =>
        rules.Find(address is null ? null : IPAddress.Parse(address), ssl: false, database, user)?.Method;

    [Fact]
    public void ParsesEveryColumn_AndFirstMatchWins()
    {
        var rules = Parse("""
            # comment line
            local   all         all                         peer
            host    appdb       app,"all"   127.0.0.1/32    scram-sha-256   # trailing comment
            host    sameuser    all         10.0.0.0 255.0.0.0  md5
            hostnossl otherdb   bob, carol  ::1/128         password
            host    all         evil        0.0.0.0/0       reject
            host    all         all         all             trust
            """);

        Assert.Equal(6, rules.Rules.Count);
        Assert.Equal([2, 3, 4, 5, 6, 7], rules.Rules.Select(r => r.Line));
        Assert.Equal(HbaMethod.Peer, MethodFor(rules, null, "appdb", "app"));
        Assert.Equal(HbaMethod.ScramSha256, MethodFor(rules, "127.0.0.1", "appdb", "app"));
        Assert.Equal(HbaMethod.ScramSha256, MethodFor(rules, "127.0.0.1", "appdb", "all"));
        Assert.Equal(HbaMethod.Trust, MethodFor(rules, "127.0.0.1", "appdb", "bob"));
        Assert.Equal(HbaMethod.Trust, MethodFor(rules, "127.0.0.2", "appdb", "app"));
        Assert.Equal(HbaMethod.Md5, MethodFor(rules, "10.1.2.3", "dave", "dave"));
        Assert.Equal(HbaMethod.Trust, MethodFor(rules, "10.1.2.3", "appdb", "dave"));
        Assert.Equal(HbaMethod.Password, MethodFor(rules, "::1", "otherdb", "carol"));
        Assert.Equal(HbaMethod.Reject, MethodFor(rules, "192.168.1.1", "appdb", "evil"));
    }

    [Fact]
    public void NoMatchingLine_FindsNothing_AndHostSslNeverMatchesWithoutTls()
    {
        var rules = Parse("""
            hostssl all all 0.0.0.0/0 trust
            hostgssenc all all 0.0.0.0/0 trust
            host appdb app 127.0.0.1/32 trust
            """);

        Assert.Null(MethodFor(rules, "127.0.0.1", "postgres", "app"));
        Assert.Null(MethodFor(rules, "127.0.0.1", "appdb", "other"));
        Assert.Null(MethodFor(rules, null, "appdb", "app"));
        Assert.Equal(HbaMethod.Trust, MethodFor(rules, "127.0.0.1", "appdb", "app"));
    }

    [Theory]
    [InlineData("10.1.0.0/16", "10.1.255.1", true)]
    [InlineData("10.1.0.0/16", "10.2.0.1", false)]
    [InlineData("10.1.2.3/32", "10.1.2.3", true)]
    [InlineData("0.0.0.0/0", "203.0.113.9", true)]
    [InlineData("192.168.0.0/23", "192.168.1.200", true)]
    [InlineData("192.168.0.0/23", "192.168.2.1", false)]
    [InlineData("127.0.0.1/32", "::ffff:127.0.0.1", true)]
    [InlineData("127.0.0.1/32", "::1", false)]
    [InlineData("fe80::/10", "fe80::1", true)]
    [InlineData("fe80::/10", "2001:db8::1", false)]
    public void CidrMatching(string cidr, string client, bool matches)
    {
        var rules = Parse($"host all all {cidr} trust");
        Assert.Equal(matches, MethodFor(rules, client, "db", "u") is not null);
    }

    [Fact]
    public void QuotedKeywordsAreNames_AndContinuationLinesJoin()
    {
        var rules = Parse("""
            host "sameuser" "all" \
                 127.0.0.1/32 md5
            """);

        Assert.Equal(HbaMethod.Md5, MethodFor(rules, "127.0.0.1", "sameuser", "all"));
        Assert.Null(MethodFor(rules, "127.0.0.1", "bob", "bob"));
        Assert.Null(MethodFor(rules, "127.0.0.1", "sameuser", "bob"));
    }

    [Fact]
    public void AtFile_ListsNamesRelativeToTheHbaFile()
    {
        string? asked = null;
        var rules = Parse("host @dbs.txt all 127.0.0.1/32 md5", path =>
        {
            asked = path;
            return ("appdb, otherdb\n# comment\nthird\n", null);
        });

        Assert.Equal("/etc/fastpool/dbs.txt", asked);
        Assert.Equal(HbaMethod.Md5, MethodFor(rules, "127.0.0.1", "otherdb", "u"));
        Assert.Equal(HbaMethod.Md5, MethodFor(rules, "127.0.0.1", "third", "u"));
        Assert.Null(MethodFor(rules, "127.0.0.1", "postgres", "u"));
    }

    [Fact]
    public void ReplicationKeyword_NeverMatches()
    {
        var rules = Parse("host replication all 127.0.0.1/32 trust");
        Assert.Null(MethodFor(rules, "127.0.0.1", "replication", "u"));
    }

    [Theory]
    [InlineData("hostx all all 127.0.0.1/32 trust", "invalid connection type \"hostx\"")]
    [InlineData("host all all 127.0.0.1/32 ident", "invalid authentication method \"ident\"; accepted: trust, reject, md5, password, scram-sha-256, peer (local only)")]
    [InlineData("host all all 127.0.0.1/32 peer", "peer authentication is only supported on local sockets")]
    [InlineData("host all all 127.0.0.1/33 trust", "invalid CIDR address \"127.0.0.1/33\"")]
    [InlineData("host all all db.example.com trust", "host names are not supported")]
    [InlineData("host all all 10.0.0.0 255.0.255.0 trust", "needs a CIDR suffix or a valid netmask")]
    [InlineData("host all all 10.0.0.0 trust", "needs a CIDR suffix or a valid netmask")]
    [InlineData("host all all samenet trust", "address \"samenet\" is not supported")]
    [InlineData("host all all 127.0.0.1/32", "incomplete line")]
    [InlineData("local all all", "incomplete line")]
    [InlineData("local samerole all trust", "\"samerole\" is not supported")]
    [InlineData("local all +admins trust", "group membership \"+admins\" is not supported")]
    [InlineData("local all a,,b trust", "empty entry")]
    [InlineData("local \"all all trust", "unterminated quoted string")]
    [InlineData("local @missing.txt all trust", "cannot read \"@missing.txt\"")]
    public void InvalidLines_AreErrorsWithFileAndLine(string line, string message)
    {
        var error = ParseError("# first line\n" + line);

        Assert.Equal("/etc/fastpool/pg_hba.conf", error.File);
        Assert.Equal(2, error.Line);
        Assert.Equal("auth_hba_file", error.Key);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }
}
