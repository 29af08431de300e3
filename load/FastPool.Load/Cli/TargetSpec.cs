using Npgsql;

namespace FastPool.Load.Cli;

/// <summary>One endpoint under test: <c>--target NAME=CONNSTRING</c>.</summary>
internal sealed record TargetSpec(string Name, string ConnectionString)
{
    /// <summary>Parses <c>NAME=CONNSTRING</c>; the name is everything before the first '='.</summary>
    public static TargetSpec Parse(string text)
    {
        var eq = text.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || eq == text.Length - 1)
        {
            throw new UsageException($"--target '{Redact(text)}' is not NAME=CONNSTRING (e.g. direct=\"Host=127.0.0.1;Port=5432;Username=postgres\").");
        }

        var name = text[..eq].Trim();
        var connectionString = text[(eq + 1)..];
        if (name.Length == 0 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new UsageException($"--target name '{name}' may only hold letters, digits, '-', '_' and '.' (it names report files).");
        }

        try
        {
            _ = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException ex)
        {
            throw new UsageException($"--target {name}: invalid connection string: {ex.Message}");
        }

        return new TargetSpec(name, connectionString);
    }

    /// <summary>host:port/database as user, for messages: never the password.</summary>
    public string Describe()
    {
        var b = new NpgsqlConnectionStringBuilder(ConnectionString);
        return $"{b.Host}:{b.Port}/{b.Database ?? b.Username} as {b.Username}";
    }

    private static string Redact(string text) =>
        text.Contains("password", StringComparison.OrdinalIgnoreCase) ? text.Split('=', 2)[0] + "=..." : text;
}
