using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Tests.Configuration;

public class ConfigValuesTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("30", 30_000_000L)]
    [InlineData("0.5", 500_000L)]
    [InlineData("2.25", 2_250_000L)]
    [InlineData("1e2", 100_000_000L)]
    [InlineData("0.0000004", 0L)]
    [InlineData("0.3", 300_000L)]
    [InlineData("0.000001", 1L)]
    [InlineData("100us", 100L)]
    [InlineData("250ms", 250_000L)]
    [InlineData("45s", 45_000_000L)]
    [InlineData("1.5min", 90_000_000L)]
    [InlineData("2h", 7_200_000_000L)]
    [InlineData("1d", 86_400_000_000L)]
    [InlineData("10 min", 600_000_000L)]
    [InlineData("5MIN", 300_000_000L)]
    public void Time_values_are_seconds_or_number_with_unit(string text, long expectedMicroseconds)
    {
        Assert.True(ConfigValues.TryParseTime(text, out var value));
        Assert.Equal(TimeSpan.FromMicroseconds(expectedMicroseconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("abc")]
    [InlineData("5 parsecs")]
    [InlineData("ms")]
    [InlineData("1,5")]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("1e300")]
    [InlineData("3 s s")]
    public void Bad_time_values_are_rejected(string text)
    {
        Assert.False(ConfigValues.TryParseTime(text, out _));
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("0", false)]
    [InlineData("2", true)]
    [InlineData("on", true)]
    [InlineData("OFF", false)]
    [InlineData("true", true)]
    [InlineData("False", false)]
    [InlineData("yes", true)]
    [InlineData("NO", false)]
    public void Booleans(string text, bool expected)
    {
        Assert.True(ConfigValues.TryParseBool(text, out var value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("maybe")]
    [InlineData("1.0")]
    [InlineData("y")]
    public void Bad_booleans_are_rejected(string text)
    {
        Assert.False(ConfigValues.TryParseBool(text, out _));
    }

    [Theory]
    [InlineData("0", 0L)]
    [InlineData("20", 20L)]
    [InlineData("-1", -1L)]
    [InlineData("+7", 7L)]
    [InlineData("0x10", 16L)]
    [InlineData("0X1f", 31L)]
    [InlineData("010", 8L)]
    [InlineData("2147483647", 2147483647L)]
    [InlineData("4294967295", 4294967295L)]
    public void Integers_are_read_like_strtol_base_0(string text, long expected)
    {
        Assert.True(ConfigValues.TryParseCInteger(text, out var value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("12abc")]
    [InlineData("08")]
    [InlineData("0x")]
    [InlineData("1.5")]
    [InlineData("99999999999999999999")]
    public void Bad_integers_are_rejected(string text)
    {
        Assert.False(ConfigValues.TryParseCInteger(text, out _));
    }

    [Theory]
    [InlineData("0777", 511)]
    [InlineData("777", 511)]
    [InlineData("0700", 448)]
    [InlineData("0", 0)]
    [InlineData("0x1ff", 511)]
    public void File_modes_are_octal(string text, int expected)
    {
        Assert.True(ConfigValues.TryParseFileMode(text, out var value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0789")]
    [InlineData("rwx")]
    [InlineData("17777")]
    public void Bad_file_modes_are_rejected(string text)
    {
        Assert.False(ConfigValues.TryParseFileMode(text, out _));
    }

    [Theory]
    [InlineData("session", PoolMode.Session)]
    [InlineData("Transaction", PoolMode.Transaction)]
    [InlineData("STATEMENT", PoolMode.Statement)]
    public void Pool_modes_are_case_insensitive(string text, PoolMode expected)
    {
        Assert.True(ConfigValues.TryParsePoolMode(text, out var value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("trust", AuthType.Trust)]
    [InlineData("any", AuthType.Any)]
    [InlineData("plain", AuthType.Plain)]
    [InlineData("md5", AuthType.Md5)]
    [InlineData("scram-sha-256", AuthType.ScramSha256)]
    [InlineData("SCRAM-SHA-256", AuthType.ScramSha256)]
    [InlineData("cert", AuthType.Cert)]
    [InlineData("hba", AuthType.Hba)]
    public void Auth_types(string text, AuthType expected)
    {
        Assert.True(ConfigValues.TryParseAuthType(text, out var value));
        Assert.Equal(expected, value);
    }
}
