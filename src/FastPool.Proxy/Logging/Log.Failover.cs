using Microsoft.Extensions.Logging;

namespace FastPool.Proxy;

/// <summary>Health-check and failover messages; event ids 80-99 are theirs.</summary>
internal static partial class Log
{
    [LoggerMessage(80, LogLevel.Warning, "database {Database}: node {NodeId} ({Host}:{Port}) did not answer a health check (attempt {Attempt} of {Attempts}): {Reason}")]
    public static partial void HealthCheckFailed(ILogger logger, string database, int nodeId, string host, int port, int attempt, int attempts, string reason);

    [LoggerMessage(81, LogLevel.Information, "database {Database}: node {NodeId} ({Host}:{Port}) suspected ({Reason}); probing it now")]
    public static partial void NodeSuspected(ILogger logger, string database, int nodeId, string host, int port, string reason);

    [LoggerMessage(82, LogLevel.Warning, "database {Database}: failover from node {FailedId}: {Message}")]
    public static partial void FailoverProblem(ILogger logger, string database, int failedId, string message);

    [LoggerMessage(83, LogLevel.Information, "database {Database}: failover from node {FailedId}: node {NewId} ({Host}:{Port}) is the primary now, {Millis} ms after the failure was confirmed")]
    public static partial void FailoverDone(ILogger logger, string database, int failedId, int newId, string host, int port, long millis);

    [LoggerMessage(84, LogLevel.Information, "{What} \"{Command}\" exited with {ExitCode}: {Output}")]
    public static partial void CommandRan(ILogger logger, string what, string command, int exitCode, string output);

    [LoggerMessage(85, LogLevel.Error, "{What} \"{Command}\" failed: {Reason}")]
    public static partial void CommandFailed(ILogger logger, string what, string command, string reason);

    [LoggerMessage(87, LogLevel.Information, "database {Database}: failover from node {FailedId}: node {NewId} ({Host}:{Port}) is the primary now, as the failover of database {Leader} over the same servers decided")]
    public static partial void FailoverFollowed(ILogger logger, string database, int failedId, int newId, string host, int port, string leader);

    [LoggerMessage(86, LogLevel.Error, "database {Database}: node {NodeId} ({Host}:{Port}) fenced: {Reason}")]
    public static partial void NodeFenced(ILogger logger, string database, int nodeId, string host, int port, string reason);
}
