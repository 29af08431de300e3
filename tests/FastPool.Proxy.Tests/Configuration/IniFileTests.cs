using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Tests.Configuration;

public class IniFileTests
{
    private static IniFile Parse(string text, string? baseDirectory = null) =>
        IniFile.Parse(text, "main.ini", baseDirectory ?? Path.GetTempPath());

    [Fact]
    public void Reads_sections_keys_values_and_line_numbers()
    {
        var ini = Parse("""
            ;; comment
            # also a comment
            [databases]
            app = host=db1 port=5432

              [pgbouncer]   ; trailing comment
            listen_port=6433
               pool_mode   =   transaction
            server_reset_query =
            """);

        Assert.Empty(ini.Errors);
        Assert.Equal(
            [
                new IniEntry("databases", "app", "host=db1 port=5432", "main.ini", 4, Path.GetTempPath().TrimEnd('/')),
                new IniEntry("pgbouncer", "listen_port", "6433", "main.ini", 7, Path.GetTempPath().TrimEnd('/')),
                new IniEntry("pgbouncer", "pool_mode", "transaction", "main.ini", 8, Path.GetTempPath().TrimEnd('/')),
                new IniEntry("pgbouncer", "server_reset_query", "", "main.ini", 9, Path.GetTempPath().TrimEnd('/')),
            ],
            ini.Entries);
        Assert.Equal(["databases", "pgbouncer"], ini.Sections.Select(s => s.Name));
        Assert.Equal(6, ini.Sections[1].Line);
    }

    [Fact]
    public void Semicolon_and_hash_later_in_a_line_are_part_of_the_value()
    {
        var ini = Parse("[pgbouncer]\nadmin_users = alice ; bob # carol\n");

        Assert.Equal("alice ; bob # carol", Assert.Single(ini.Entries).Value);
    }

    [Fact]
    public void Handles_crlf_and_byte_order_mark()
    {
        var ini = Parse("\uFEFF[pgbouncer]\r\nlisten_port = 1234\r\n\r\nverbose = 2\r\n");

        Assert.Empty(ini.Errors);
        Assert.Equal(["1234", "2"], ini.Entries.Select(e => e.Value));
        Assert.Equal([2, 4], ini.Entries.Select(e => e.Line));
    }

    [Fact]
    public void Quoted_keys_allow_any_character()
    {
        var ini = Parse("[databases]\n\"my-db.v2\" = host=x\n\"we\"\"ird\"=host=y\n");

        Assert.Empty(ini.Errors);
        Assert.Equal(["my-db.v2", "we\"ird"], ini.Entries.Select(e => e.Key));
        Assert.Equal(["host=x", "host=y"], ini.Entries.Select(e => e.Value));
    }

    [Fact]
    public void Keys_keep_their_case()
    {
        var ini = Parse("[databases]\nMyDb = host=x\n");

        Assert.Equal("MyDb", Assert.Single(ini.Entries).Key);
    }

    [Fact]
    public void Entries_before_any_section_have_no_section()
    {
        var ini = Parse("orphan = 1\n[pgbouncer]\n");

        Assert.Null(Assert.Single(ini.Entries).Section);
    }

    [Theory]
    [InlineData("just some words", "syntax error: expected \"key = value\", \"[section]\" or \"%include file\", got \"just some words\"")]
    [InlineData("[pgbouncer", "syntax error: section header is missing ']'")]
    [InlineData("[]", "syntax error: empty section name")]
    [InlineData("[pgbouncer] extra", "syntax error: unexpected text \"extra\" after section header")]
    [InlineData("two words = 1", "syntax error: key \"two words\" contains whitespace")]
    [InlineData("= 1", "syntax error: missing key before '='")]
    [InlineData("\"unterminated = 1", "syntax error: unterminated quoted name")]
    [InlineData("\"quoted\" 1", "syntax error: expected '=' after \"quoted\"")]
    [InlineData("%include", "%include needs a file name")]
    public void Syntax_errors_name_file_and_line(string badLine, string expected)
    {
        var ini = Parse($"[pgbouncer]\nlisten_port = 1\n{badLine}\nverbose = 1\n");

        var error = Assert.Single(ini.Errors);
        Assert.Equal("main.ini", error.File);
        Assert.Equal(3, error.Line);
        Assert.Equal(expected, error.Message);
        Assert.Equal(["listen_port", "verbose"], ini.Entries.Select(e => e.Key));
    }

    [Fact]
    public void Include_is_relative_to_the_including_file_and_keeps_the_section()
    {
        using var dir = new TempDirectory();
        dir.Write("conf.d/pool.ini", "pool_mode = transaction\n%include more/limits.ini\n");
        dir.Write("conf.d/more/limits.ini", "max_client_conn = 500\n[users]\nbob = pool_size=3\n");

        var ini = Parse("[pgbouncer]\nlisten_port = 1\n%include conf.d/pool.ini\nalice = pool_size=4\n", dir.Path);

        Assert.Empty(ini.Errors);
        var pool = Path.Combine(dir.Path, "conf.d", "pool.ini");
        var limits = Path.Combine(dir.Path, "conf.d", "more", "limits.ini");
        Assert.Equal(
            [
                ("pgbouncer", "listen_port", "main.ini", 2),
                ("pgbouncer", "pool_mode", pool, 1),
                ("pgbouncer", "max_client_conn", limits, 1),
                ("users", "bob", limits, 3),
                ("users", "alice", "main.ini", 4),
            ],
            ini.Entries.Select(e => (e.Section, e.Key, e.File, e.Line)));
    }

    [Fact]
    public void Include_with_absolute_path_and_trailing_whitespace()
    {
        using var dir = new TempDirectory();
        var other = dir.Write("other.ini", "[pgbouncer]\nverbose = 3\n");

        var ini = Parse($"%include {other}   \n");

        Assert.Empty(ini.Errors);
        Assert.Equal("3", Assert.Single(ini.Entries).Value);
    }

    [Fact]
    public void Missing_include_is_an_error_at_the_include_line()
    {
        using var dir = new TempDirectory();

        var ini = Parse("[pgbouncer]\n%include nope.ini\nverbose = 1\n", dir.Path);

        var error = Assert.Single(ini.Errors);
        Assert.Equal(("main.ini", 2), (error.File, error.Line));
        Assert.Equal($"cannot read included file \"{Path.Combine(dir.Path, "nope.ini")}\": no such file", error.Message);
        Assert.Single(ini.Entries);
    }

    [Fact]
    public void Include_cycle_is_detected()
    {
        using var dir = new TempDirectory();
        var a = dir.Write("a.ini", "[pgbouncer]\nverbose = 1\n%include b.ini\n");
        var b = dir.Write("b.ini", "listen_port = 7000\n%include a.ini\n");

        var ini = IniFile.Load(a);

        var error = Assert.Single(ini.Errors);
        Assert.Equal((b, 2), (error.File, error.Line));
        Assert.Equal($"%include cycle: {a} -> {b} -> {a}", error.Message);
        Assert.Equal(["verbose", "listen_port"], ini.Entries.Select(e => e.Key));
    }

    [Fact]
    public void Self_include_from_text_is_a_cycle()
    {
        using var dir = new TempDirectory();

        var ini = IniFile.Parse("[pgbouncer]\n%include main.ini\n", "main.ini", dir.Path);

        Assert.StartsWith("%include cycle:", Assert.Single(ini.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Include_depth_is_limited()
    {
        using var dir = new TempDirectory();
        for (var i = 0; i < 12; i++)
        {
            dir.Write($"level{i}.ini", $"key{i} = {i}\n%include level{i + 1}.ini\n");
        }

        dir.Write("level12.ini", "last = 1\n");

        var ini = Parse("[pgbouncer]\n%include level0.ini\n", dir.Path);

        var error = Assert.Single(ini.Errors);
        Assert.Equal($"%include nesting is deeper than {IniFile.MaxIncludeDepth} levels", error.Message);
        Assert.Equal(Path.Combine(dir.Path, "level9.ini"), error.File);
        Assert.Equal(10, ini.Entries.Count);
    }

    [Fact]
    public void Load_reports_a_missing_file()
    {
        var ini = IniFile.Load("/nonexistent/dir/pgbouncer.ini");

        var error = Assert.Single(ini.Errors);
        Assert.Equal("/nonexistent/dir/pgbouncer.ini:0: cannot read config file \"/nonexistent/dir/pgbouncer.ini\": no such file", error.ToString());
        Assert.Empty(ini.Entries);
    }
}
