using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Tests.Configuration;

public class ConnectStringTests
{
    private static List<KeyValuePair<string, string>> Parse(string text)
    {
        Assert.True(ConnectString.TryParse(text, out var pairs, out var error), error);
        return pairs;
    }

    private static string ParseError(string text)
    {
        Assert.False(ConnectString.TryParse(text, out _, out var error));
        Assert.NotNull(error);
        return error;
    }

    [Fact]
    public void Parses_plain_pairs_in_order()
    {
        var pairs = Parse("host=10.0.0.1 port=5433 dbname=app");

        Assert.Equal(
            [new("host", "10.0.0.1"), new("port", "5433"), new("dbname", "app")],
            pairs);
    }

    [Fact]
    public void Empty_and_blank_strings_have_no_pairs()
    {
        Assert.Empty(Parse(""));
        Assert.Empty(Parse("   \t "));
    }

    [Fact]
    public void Whitespace_around_equals_and_between_pairs_is_allowed()
    {
        var pairs = Parse("  host = db1 \t port=\t6000   ");

        Assert.Equal([new("host", "db1"), new("port", "6000")], pairs);
    }

    [Fact]
    public void Quoted_value_keeps_spaces()
    {
        var pairs = Parse("connect_query='SELECT 1, 2' user=bob");

        Assert.Equal([new("connect_query", "SELECT 1, 2"), new("user", "bob")], pairs);
    }

    [Fact]
    public void Backslash_quote_escape_as_in_libpq()
    {
        var pairs = Parse(@"password='it\'s a \\secret\\'");

        Assert.Equal("it's a \\secret\\", Assert.Single(pairs).Value);
    }

    [Fact]
    public void Doubled_quote_escape_as_in_pgbouncer()
    {
        var pairs = Parse("connect_query='SET search_path = ''app'''");

        Assert.Equal("SET search_path = 'app'", Assert.Single(pairs).Value);
    }

    [Fact]
    public void Other_backslashes_stay_literal()
    {
        var pairs = Parse(@"password='a\b\n' application_name=c:\x");

        Assert.Equal([new("password", @"a\b\n"), new("application_name", @"c:\x")], pairs);
    }

    [Fact]
    public void Repeated_key_is_returned_twice()
    {
        var pairs = Parse("port=1 port=2");

        Assert.Equal(2, pairs.Count);
        Assert.Equal("2", pairs[^1].Value);
    }

    [Theory]
    [InlineData("host='db1", "unterminated quoted value for \"host\"")]
    [InlineData("host", "missing '=' after \"host\"")]
    [InlineData("host db1", "missing '=' after \"host\"")]
    [InlineData("=db1", "missing parameter name before '='")]
    [InlineData("host=", "missing value for \"host\"")]
    [InlineData("password=''", "empty value for \"password\"")]
    [InlineData("host='a'b", "unexpected text after the quoted value of \"host\"")]
    public void Syntax_errors_are_described(string text, string expected)
    {
        Assert.Equal(expected, ParseError(text));
    }
}
