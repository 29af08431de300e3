using Microsoft.Extensions.Logging;

namespace FastPool.Proxy;

/// <summary>Every log message of the proxy core, source-generated (no boxing, no format parsing at run time). Event ids live here only.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "listening on {Endpoint}")]
    public static partial void Listening(ILogger logger, string endpoint);

    [LoggerMessage(2, LogLevel.Information, "C-{ClientId} {Database}/{User}@{Remote} login attempt: db={Database} user={User} application_name={ApplicationName}")]
    public static partial void ClientLogin(ILogger logger, long clientId, string database, string user, string remote, string applicationName);

    [LoggerMessage(3, LogLevel.Information, "C-{ClientId} {Database}/{User}@{Remote} closing because: {Reason} (age {AgeSeconds:0.###}s)")]
    public static partial void ClientClosed(ILogger logger, long clientId, string database, string user, string remote, string reason, double ageSeconds);

    [LoggerMessage(4, LogLevel.Warning, "C-{ClientId} {Remote} pooler error: {Message}")]
    public static partial void ClientError(ILogger logger, long clientId, string remote, string message);

    [LoggerMessage(5, LogLevel.Information, "new server connection {Server} for {Pool} ({Security})")]
    public static partial void ServerConnected(ILogger logger, string server, string pool, string security);

    [LoggerMessage(6, LogLevel.Warning, "{Pool}: could not log in to server {Host}:{Port}: {Message}")]
    public static partial void ServerLoginFailed(ILogger logger, string pool, string host, int port, string message);

    [LoggerMessage(7, LogLevel.Warning, "{Server}: server_check_query failed: {Message}")]
    public static partial void ServerCheckFailed(ILogger logger, string server, string message);

    [LoggerMessage(8, LogLevel.Warning, "{Pool}: connect_query failed: {Message}")]
    public static partial void ConnectQueryFailed(ILogger logger, string pool, string message);

    [LoggerMessage(9, LogLevel.Information, "{Server} closed: {Reason}")]
    public static partial void ServerClosed(ILogger logger, string server, string reason);

    [LoggerMessage(10, LogLevel.Information, "stats: {Xacts} xacts/s, {Queries} queries/s, in {InBytes} B/s, out {OutBytes} B/s, xact {XactMicros} us, query {QueryMicros} us, wait {WaitMicros} us")]
    public static partial void Stats(ILogger logger, long xacts, long queries, long inBytes, long outBytes, long xactMicros, long queryMicros, long waitMicros);

    [LoggerMessage(11, LogLevel.Warning, "{Remote}: {Message}")]
    public static partial void BadClient(ILogger logger, string remote, string message);

    [LoggerMessage(12, LogLevel.Error, "accept failed on {Endpoint}: {Message}")]
    public static partial void AcceptFailed(ILogger logger, string endpoint, string message);

    [LoggerMessage(13, LogLevel.Information, "{Remote}: cancel request {Outcome}")]
    public static partial void CancelRequest(ILogger logger, string remote, string outcome);

    [LoggerMessage(14, LogLevel.Information, "shutting down: {Mode}")]
    public static partial void ShuttingDown(ILogger logger, string mode);

    [LoggerMessage(15, LogLevel.Error, "C-{ClientId}: unexpected error: {Message}")]
    public static partial void Unexpected(ILogger logger, long clientId, string message, Exception exception);

    [LoggerMessage(16, LogLevel.Information, "transport: {Transport} ({Reason})")]
    public static partial void TransportChosen(ILogger logger, string transport, string reason);

    [LoggerMessage(17, LogLevel.Information, "{Pool}: the reloaded configuration changed its server; new clients get a new pool, this one closes its connections as they are released")]
    public static partial void PoolRetired(ILogger logger, string pool);

    [LoggerMessage(18, LogLevel.Information, "configuration reloaded from {File}")]
    public static partial void ReloadApplied(ILogger logger, string file);

    [LoggerMessage(19, LogLevel.Error, "reload of {File} rejected, the running configuration stays in effect: {Reason}")]
    public static partial void ReloadRejected(ILogger logger, string file, string reason);

    [LoggerMessage(20, LogLevel.Warning, "reload: {Setting} changed in the file but applies only at restart; keeping the running value")]
    public static partial void ReloadNeedsRestart(ILogger logger, string setting);

    [LoggerMessage(21, LogLevel.Warning, "reload: {Diagnostic}")]
    public static partial void ReloadWarning(ILogger logger, string diagnostic);

    [LoggerMessage(22, LogLevel.Information, "C-{ClientId} {User}@{Remote} admin command: {Command}")]
    public static partial void AdminCommand(ILogger logger, long clientId, string user, string remote, string command);

    [LoggerMessage(23, LogLevel.Information, "SET {Key} = {Value} applied from the admin console")]
    public static partial void SettingChanged(ILogger logger, string key, string value);

    [LoggerMessage(24, LogLevel.Warning, "database {Database}: auth_query as {AuthUser} gave no answer: {Reason}")]
    public static partial void AuthQueryFailed(ILogger logger, string database, string authUser, string reason);

    [LoggerMessage(25, LogLevel.Warning, "database {Database}: auth_type = any needs user= on the database entry (the login to use for every client); client refused")]
    public static partial void AnyNeedsUser(ILogger logger, string database);

    [LoggerMessage(40, LogLevel.Information, "database {Database}: node {NodeId} ({Host}:{Port}) is now {Role}, {Status} ({Reason})")]
    public static partial void NodeChanged(ILogger logger, string database, int nodeId, string host, int port, string role, string status, string reason);

    [LoggerMessage(41, LogLevel.Warning, "database {Database}: node {NodeId} ({Host}:{Port}) could not be reached for a read, marked down until it answers a check; the read went to node {FallbackId} ({Reason})")]
    public static partial void ReadNodeUnreachable(ILogger logger, string database, int nodeId, string host, int port, int fallbackId, string reason);

    [LoggerMessage(42, LogLevel.Warning, "database {Database}: node {NodeId} ({Host}:{Port}) failed before answering a read ({Reason}); marked down until it answers a check, the read is sent again elsewhere")]
    public static partial void ReadRetried(ILogger logger, string database, int nodeId, string host, int port, string reason);

    // 60-69: operations (metrics endpoint, shutdown, rolling restart).
    [LoggerMessage(60, LogLevel.Information, "metrics on http://{Endpoint}/metrics, health check on /healthz, status page on /")]
    public static partial void MetricsListening(ILogger logger, string endpoint);

    [LoggerMessage(61, LogLevel.Information, "shutdown: {Count} client(s) still connected after shutdown_wait_timeout; closing them with 57P01")]
    public static partial void ShutdownTimedOut(ILogger logger, int count);

    [LoggerMessage(62, LogLevel.Information, "so_reuseport: handing the port over ({Outcome}); accepting for {GraceSeconds} s more")]
    public static partial void HandingOver(ILogger logger, string outcome, double graceSeconds);

    [LoggerMessage(120, LogLevel.Debug, "C-{ClientId} transaction moved from node {StandbyId} to the primary, node {PrimaryId}, before its first write")]
    public static partial void TransactionMovedToPrimary(ILogger logger, long clientId, int standbyId, int primaryId);

    [LoggerMessage(122, LogLevel.Information, "kernel file descriptor limit: {Soft} (hard: {Hard}); max_client_conn: {MaxClientConn}, max expected fd use: {Expected}")]
    public static partial void FileLimit(ILogger logger, ulong soft, ulong hard, int maxClientConn, long expected);

    [LoggerMessage(123, LogLevel.Warning, "the open-file limit {Soft} is below the {Expected} descriptors max_client_conn and the pools can use: clients past it are refused at accept; raise it (ulimit -n, systemd LimitNOFILE=)")]
    public static partial void FileLimitLow(ILogger logger, ulong soft, long expected);

    [LoggerMessage(88, LogLevel.Warning, "result cache: redis {Redis} unreachable ({Reason}): every lookup is a miss and nothing is cached until it answers again")]
    public static partial void CacheRedisUnreachable(ILogger logger, string redis, string reason);

    [LoggerMessage(89, LogLevel.Information, "result cache: redis {Redis} answers again")]
    public static partial void CacheRedisReachable(ILogger logger, string redis);

    [LoggerMessage(90, LogLevel.Warning, "memqcache_method = redis without memqcache_redis (HOST:PORT): results are cached in this process's memory only")]
    public static partial void CacheRedisMissing(ILogger logger);

    [LoggerMessage(124, LogLevel.Information, "{Signal}: {Outcome}")]
    public static partial void SignalControl(ILogger logger, string signal, string outcome);
}
