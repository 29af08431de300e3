using System.Text;
using FastPool.Protocol.Tests.Infrastructure;

namespace FastPool.Protocol.Tests;

/// <summary>The Parse/Bind/Execute/Sync batch FastPool sends for its own parameterized statements (auth_query).</summary>
public sealed class ExtendedQueryMessagesTests
{
    [Fact]
    public void ExtendedQuery_IsParseBindExecuteSync_WithTheValueInBindNotInTheSql()
    {
        const string sql = "SELECT usename, passwd FROM pg_shadow WHERE usename=$1";
        const string user = "o'brien\"; DROP";
        var actual = new MessageBuilder().ExtendedQuery(sql, [user]).Written.ToArray();

        var expected = new MessageBuilder()
            .Parse(string.Empty, sql)
            .Bind(string.Empty, string.Empty, [], [Encoding.UTF8.GetBytes(user)], [])
            .Execute(string.Empty, 0)
            .Sync()
            .Written.ToArray();
        Assert.Equal(expected, actual);
    }
}
