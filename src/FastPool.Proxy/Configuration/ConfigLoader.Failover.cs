namespace FastPool.Proxy.Configuration;

public static partial class ConfigLoader
{
    private sealed partial class Builder
    {
        /// <summary>The failover keys of [fastpool]; false for any other key. A bad value is an error naming file, line and key.</summary>
        private bool ApplyFailover(IniEntry e, string key)
        {
            var f = _fastPool.Failover;
            switch (key)
            {
                case "health_check_period":
                    f = TryTime(e, key, e.Value, out var period) ? f with { HealthCheckPeriod = period } : f;
                    break;
                case "health_check_timeout":
                    f = TryTime(e, key, e.Value, out var timeout) ? f with { HealthCheckTimeout = timeout } : f;
                    break;
                case "health_check_max_retries":
                    f = TryInt(e, key, 0, 1000, out var retries) ? f with { HealthCheckMaxRetries = retries } : f;
                    break;
                case "health_check_retry_delay":
                    f = TryTime(e, key, e.Value, out var delay) ? f with { HealthCheckRetryDelay = delay } : f;
                    break;
                case "health_check_user":
                    f = f with { HealthCheckUser = NullIfEmpty(e.Value) };
                    break;
                case "health_check_password":
                    f = f with { HealthCheckPassword = NullIfEmpty(e.Value) };
                    break;
                case "failover":
                    switch (e.Value.Trim().ToLowerInvariant())
                    {
                        case "promote":
                            f = f with { Mode = FailoverMode.Promote };
                            break;
                        case "command":
                            f = f with { Mode = FailoverMode.Command };
                            break;
                        case "off":
                            f = f with { Mode = FailoverMode.Off };
                            break;
                        default:
                            InvalidValue(e, key, e.Value, "promote, command, off");
                            break;
                    }

                    break;
                case "failover_command":
                    f = f with { FailoverCommand = NullIfEmpty(e.Value) };
                    break;
                case "follow_primary_command":
                    f = f with { FollowPrimaryCommand = NullIfEmpty(e.Value) };
                    break;
                case "failover_command_timeout":
                    f = TryTime(e, key, e.Value, out var commandTimeout) ? f with { FailoverCommandTimeout = commandTimeout } : f;
                    break;
                case "failover_user":
                    f = f with { FailoverUser = NullIfEmpty(e.Value) };
                    break;
                case "failover_password":
                    f = f with { FailoverPassword = NullIfEmpty(e.Value) };
                    break;
                case "failover_wait_timeout":
                    f = TryTime(e, key, e.Value, out var wait) ? f with { FailoverWaitTimeout = wait } : f;
                    break;
                case "auto_failback":
                    f = TryBool(e, key, out var failback) ? f with { AutoFailback = failback } : f;
                    break;
                case "failover_on_backend_error":
                    f = TryBool(e, key, out var onError) ? f with { FailoverOnBackendError = onError } : f;
                    break;
                case "recovery_command":
                    f = f with { RecoveryCommand = NullIfEmpty(e.Value) };
                    break;
                case "recovery_timeout":
                    f = TryTime(e, key, e.Value, out var recoveryTimeout) ? f with { RecoveryTimeout = recoveryTimeout } : f;
                    break;
                case "backend_data_directory":
                    f = f with { DataDirectories = SplitList(e.Value) };
                    break;
                default:
                    return false;
            }

            _fastPool = _fastPool with { Failover = f };
            return true;
        }
    }
}
