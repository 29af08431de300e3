using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Tests.Configuration;

/// <summary>The health-check and failover keys of [fastpool]: Pgpool-II's names, PgBouncer's value syntax, errors naming file:line.</summary>
public class FailoverConfigTests
{
    private static ConfigLoadResult LoadText(string text) => ConfigLoader.LoadFromText(text, "pgbouncer.ini", Path.GetTempPath());

    [Fact]
    public void Every_key_is_read()
    {
        var result = LoadText("""
            [fastpool]
            health_check_period = 2
            health_check_timeout = 1500ms
            health_check_max_retries = 4
            health_check_retry_delay = 250ms
            health_check_user = hc
            health_check_password = hcpw
            failover = command
            failover_command = /bin/promote %d %m
            follow_primary_command = /bin/follow %d %H
            failover_command_timeout = 30
            failover_user = su
            failover_password = supw
            failover_wait_timeout = 12
            auto_failback = on
            failover_on_backend_error = 1
            backend_data_directory = /data/a, /data/b
            """);

        Assert.Empty(result.Errors);
        var f = result.Config!.FastPool.Failover;
        Assert.Equal(TimeSpan.FromSeconds(2), f.HealthCheckPeriod);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), f.HealthCheckTimeout);
        Assert.Equal(4, f.HealthCheckMaxRetries);
        Assert.Equal(TimeSpan.FromMilliseconds(250), f.HealthCheckRetryDelay);
        Assert.Equal("hc", f.HealthCheckUser);
        Assert.Equal("hcpw", f.HealthCheckPassword);
        Assert.Equal(FailoverMode.Command, f.Mode);
        Assert.Equal("/bin/promote %d %m", f.FailoverCommand);
        Assert.Equal("/bin/follow %d %H", f.FollowPrimaryCommand);
        Assert.Equal(TimeSpan.FromSeconds(30), f.FailoverCommandTimeout);
        Assert.Equal("su", f.FailoverUser);
        Assert.Equal("supw", f.FailoverPassword);
        Assert.Equal(TimeSpan.FromSeconds(12), f.FailoverWaitTimeout);
        Assert.True(f.AutoFailback);
        Assert.True(f.FailoverOnBackendError);
        Assert.Equal(["/data/a", "/data/b"], f.DataDirectories);
    }

    [Fact]
    public void Defaults_are_safe_ones()
    {
        var f = LoadText("[pgbouncer]\n").Config!.FastPool.Failover;

        Assert.Equal(FailoverMode.Promote, f.Mode);
        Assert.False(f.FailoverOnBackendError);
        Assert.False(f.AutoFailback);
        Assert.True(f.HealthCheckMaxRetries > 0);
        Assert.True(f.HealthCheckPeriod > TimeSpan.Zero);
    }

    [Theory]
    [InlineData("failover = maybe", "pgbouncer.ini:2: invalid value \"maybe\" for failover; accepted: promote, command, off")]
    [InlineData("health_check_max_retries = -1", "pgbouncer.ini:2: invalid value \"-1\" for health_check_max_retries; accepted: an integer from 0 to 1000")]
    public void Bad_values_stop_startup_naming_file_line_and_key(string line, string expected)
    {
        var result = LoadText("[fastpool]\n" + line + "\n");

        Assert.Null(result.Config);
        Assert.Equal(expected, Assert.Single(result.Errors).ToString());
    }

    [Fact]
    public void A_bad_time_names_its_key()
    {
        var result = LoadText("[fastpool]\nhealth_check_timeout = soon\n");

        Assert.Null(result.Config);
        var error = Assert.Single(result.Errors);
        Assert.Equal("health_check_timeout", error.Key);
        Assert.Equal(2, error.Line);
    }
}
