using FastPool.Load.Scenarios;

namespace FastPool.Load.Tests.Scenarios;

public sealed class ScriptParserTests
{
    [Fact]
    public void Placeholders_become_positional_parameters_and_casts_and_strings_are_left_alone()
    {
        var script = ScriptParser.Parse("t.sql", "\\set a random(1, 10 * :scale)\nSELECT :a::int, ':a', x\n  FROM t WHERE y = :a;\n");

        var statement = Assert.Single(script.Statements);
        Assert.Equal("SELECT $1::int, ':a', x\n  FROM t WHERE y = $2;", statement.ParameterizedSql);
        Assert.Equal(2, statement.Line);
        Assert.True(script.Uses(Script.Scale));
    }

    [Fact]
    public void Set_expressions_evaluate_with_precedence_and_random_stays_in_range()
    {
        var script = ScriptParser.Parse("t.sql", "\\set a 2 + 3 * (4 - 1) / 3\n\\set r random(:a, :a + 2)\nSELECT :r;\n");
        var variables = new long[script.Variables.Count];
        var random = new Random(1);
        for (var i = 0; i < 100; i++)
        {
            foreach (var assignment in script.Assignments)
            {
                variables[assignment.Variable] = assignment.Value.Evaluate(variables, random);
            }

            Assert.Equal(5, variables[script.Variables.ToList().IndexOf("a")]);
            Assert.InRange(variables[script.Variables.ToList().IndexOf("r")], 5, 7);
        }

        Assert.Equal("SELECT 5;", script.Statements[0].InlineSql([0, 0, 5, 5]));
    }

    [Theory]
    [InlineData("SELECT 1", "t.sql:1: statement does not end with ';'")]
    [InlineData("\\set x\nSELECT 1;", "t.sql:1: expected \\set NAME EXPRESSION")]
    [InlineData("-- c\n\\set x random(1, 2\nSELECT 1;", "t.sql:2: in \\set: expected ')'")]
    [InlineData("\\set x 1\nSELECT :y;", "t.sql:2: undefined variable ':y'")]
    [InlineData("\\set scale 3\nSELECT 1;", "t.sql:1: 'scale' is built in")]
    [InlineData("\n\n-- only comments\n", "t.sql:1: the script has no SQL statement")]
    public void Errors_name_the_line(string text, string expected)
    {
        var ex = Assert.Throws<ScriptException>(() => ScriptParser.Parse("t.sql", text));
        Assert.StartsWith(expected, ex.Message, StringComparison.Ordinal);
    }
}
