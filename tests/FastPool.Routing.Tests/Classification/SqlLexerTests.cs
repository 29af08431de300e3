using System.Text;
using FastPool.Routing.Classification;

namespace FastPool.Routing.Tests.Classification;

public sealed class SqlLexerTests
{
    private static List<(SqlTokenKind Kind, string Text)> Lex(string sql)
    {
        var bytes = Encoding.UTF8.GetBytes(sql);
        var lexer = new SqlLexer(bytes);
        var tokens = new List<(SqlTokenKind, string)>();
        while (true)
        {
            var t = lexer.Next();
            if (t.Kind == SqlTokenKind.End)
            {
                return tokens;
            }

            tokens.Add((t.Kind, Encoding.UTF8.GetString(lexer.TextOf(t))));
        }
    }

    [Fact]
    public void Tokens_of_a_statement()
    {
        Assert.Equal(
            [
                (SqlTokenKind.Word, "SELECT"), (SqlTokenKind.Word, "a"), (SqlTokenKind.Symbol, ","), (SqlTokenKind.QuotedIdentifier, "\"B c\""),
                (SqlTokenKind.Word, "FROM"), (SqlTokenKind.Word, "t"), (SqlTokenKind.Word, "WHERE"), (SqlTokenKind.Word, "x"),
                (SqlTokenKind.Symbol, "="), (SqlTokenKind.Parameter, "$1"), (SqlTokenKind.Word, "AND"), (SqlTokenKind.Word, "y"),
                (SqlTokenKind.Symbol, "<"), (SqlTokenKind.Number, "1.5e3"), (SqlTokenKind.Semicolon, ";"),
            ],
            Lex("SELECT a, \"B c\" FROM t -- trailing\nWHERE x = $1 AND y < 1.5e3;"));
    }

    [Theory]
    [InlineData("'it''s'")]
    [InlineData("E'a\\'b'")]
    [InlineData("e'\\\\'")]
    [InlineData("B'1010'")]
    [InlineData("X'1F'")]
    [InlineData("N'national'")]
    [InlineData("U&'d\\0061t\\+000061'")]
    [InlineData("$$dollar ' \" -- /* $$")]
    [InlineData("$fn$ body $$ inner $$ still $fn$")]
    public void String_constants_are_one_token(string literal)
    {
        var tokens = Lex(literal + " x");
        Assert.Equal([(SqlTokenKind.String, literal), (SqlTokenKind.Word, "x")], tokens);
    }

    [Fact]
    public void Comments_nest_and_vanish()
    {
        Assert.Equal([(SqlTokenKind.Word, "a"), (SqlTokenKind.Word, "b")], Lex("a /* one /* two */ still */ b"));
        Assert.Equal([(SqlTokenKind.Word, "a")], Lex("a -- b\r"));
    }

    [Fact]
    public void Dollar_in_identifiers_is_part_of_them()
    {
        Assert.Equal([(SqlTokenKind.Word, "a$b"), (SqlTokenKind.Symbol, "$")], Lex("a$b $"));
    }

    [Theory]
    [InlineData("/*NO LOAD BALANCE*/ select 1", true)]
    [InlineData("\n /*  no load balance  */select 1", true)]
    [InlineData("select /*NO LOAD BALANCE*/ 1", false)]
    [InlineData("/*NO LOAD BALANCE", false)]
    public void Hint_at_the_start(string sql, bool expected)
    {
        Assert.Equal(expected, SqlLexer.StartsWithHint(Encoding.UTF8.GetBytes(sql), "NO LOAD BALANCE"u8));
    }
}
