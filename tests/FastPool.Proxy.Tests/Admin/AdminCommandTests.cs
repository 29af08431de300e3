using FastPool.Proxy.Admin;

namespace FastPool.Proxy.Tests.Admin;

public sealed class AdminCommandTests
{
    [Theory]
    [InlineData("show pools", "SHOW", "pools")]
    [InlineData("  SHOW   POOLS ;; ", "SHOW", "POOLS")]
    [InlineData("pause \"my db\"", "PAUSE", "my db")]
    [InlineData("Kill_Client 17;", "KILL_CLIENT", "17")]
    [InlineData("RELOAD", "RELOAD", null)]
    public void Parse_ReadsVerbAndWords(string sql, string verb, string? arg)
    {
        var command = AdminCommand.Parse(sql, out var error);
        Assert.Null(error);
        Assert.NotNull(command);
        Assert.Equal(verb, command.Verb);
        Assert.Equal(arg is null ? [] : [arg], command.Args);
    }

    [Theory]
    [InlineData("SET default_pool_size = 9", "default_pool_size", "9")]
    [InlineData("set Server_Reset_Query TO 'DISCARD ALL';", "server_reset_query", "DISCARD ALL")]
    [InlineData("SET server_check_query = 'select ''x'''", "server_check_query", "select 'x'")]
    [InlineData("SET admin_users=a,b", "admin_users", "a,b")]
    public void Parse_Set_KeepsTheValueAsWritten(string sql, string key, string value)
    {
        var command = AdminCommand.Parse(sql, out var error);
        Assert.Null(error);
        Assert.Equal("SET", command!.Verb);
        Assert.Equal([key, value], command.Args);
    }

    [Theory]
    [InlineData("SHOW POOLS; SHOW STATS")]
    [InlineData("SET default_pool_size")]
    [InlineData("SET = 3")]
    public void Parse_RejectsWhatIsNotOneCommand(string sql)
    {
        Assert.Null(AdminCommand.Parse(sql, out var error));
        Assert.NotNull(error);
    }

    [Fact]
    public void Parse_EmptyQuery_HasNoVerb() => Assert.Equal(string.Empty, AdminCommand.Parse(" ; ", out _)!.Verb);
}
