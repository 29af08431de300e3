using FastPool.Proxy.Sessions;

namespace FastPool.Proxy.Tests.Sessions;

/// <summary>
/// Transaction pooling skips the settings query when a client's key equals its server's: equal keys must mean
/// equal settings, whatever order or name case the two sides collected them in, and any difference must show.
/// </summary>
public sealed class SessionStateKeyTests
{
    private static readonly KeyValuePair<string, string>[] s_serverReported =
    [
        new("DateStyle", "ISO, MDY"), new("TimeZone", "UTC"), new("application_name", "pgbench"),
    ];

    [Fact]
    public void SameSettingsInAnotherOrderAndNameCase_GiveTheSameKey()
    {
        var client = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["application_name"] = "pgbench", ["timezone"] = "UTC", ["datestyle"] = "ISO, MDY",
        };
        var settings = new Dictionary<string, string> { ["search_path"] = "SET search_path = a", ["work_mem"] = "SET work_mem = '8MB'" };
        var serverSettings = new Dictionary<string, string> { ["work_mem"] = "SET work_mem = '8MB'", ["search_path"] = "SET search_path = a" };

        Assert.Equal(SessionStateKey.Build(s_serverReported, serverSettings), SessionStateKey.Build(client, settings));
    }

    [Theory]
    [InlineData("TimeZone", "Europe/Paris", null, null)]
    [InlineData(null, null, "search_path", "SET search_path = b")]
    [InlineData(null, null, "statement_timeout", "SET statement_timeout = 5")]
    public void AnyDifference_GivesAnotherKey(string? reportedName, string? reportedValue, string? settingName, string? settingStatement)
    {
        var reported = s_serverReported.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.OrdinalIgnoreCase);
        var settings = new Dictionary<string, string> { ["search_path"] = "SET search_path = a" };
        string before = SessionStateKey.Build(reported, settings);
        if (reportedName is not null)
        {
            reported[reportedName] = reportedValue!;
        }

        if (settingName is not null)
        {
            settings[settingName] = settingStatement!;
        }

        Assert.NotEqual(before, SessionStateKey.Build(reported, settings));
    }

    [Fact]
    public void AValueMovedBetweenReportedAndSettings_GivesAnotherKey()
    {
        var a = SessionStateKey.Build([new("x", "1")], []);
        var b = SessionStateKey.Build([], [new("x", "1")]);
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void AnUnknownServerSetting_NeverMatchesAClientStatement()
    {
        var server = SessionStateKey.Build(s_serverReported, [new("search_path", ClientSession.UnknownSetting)]);
        var client = SessionStateKey.Build(s_serverReported, [new("search_path", "SET search_path = a")]);
        Assert.NotEqual(server, client);
    }
}
