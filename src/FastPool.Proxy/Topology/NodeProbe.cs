using System.Globalization;
using System.Net.Sockets;
using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Topology;

/// <summary>How a probe that got no check failed; it decides whether the node is down at once, after retries, or not at all.</summary>
internal enum ProbeFailure
{
    None,

    /// <summary>Nothing listens on the node's port: the postmaster is gone. Confirms a dead server at once.</summary>
    Refused,

    /// <summary>No answer in time, a dropped connection, or 57P03 (starting up, shutting down, in recovery): retried.</summary>
    Unanswered,

    /// <summary>The server answered with an error (a refused login, too many connections): it is alive.</summary>
    Answered,
}

internal sealed record ProbeResult(NodeCheck Check, ProbeFailure Failure);

/// <summary>
/// One check of one node on a connection of its own (never a client pool's, so a full pool cannot delay it):
/// connect, log in, ask for its role and WAL positions (PostgreSQL docs 9.27.4 "Recovery Control Functions",
/// 28.2.4 pg_stat_wal_receiver), close.
/// </summary>
internal static class NodeProbe
{
    private const string CheckQuery =
        "SELECT pg_is_in_recovery(), " +
        "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, " +
        "EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())), " +
        "pg_last_wal_receive_lsn(), " +
        "(SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'), " +
        "CASE WHEN pg_is_in_recovery() THEN NULL ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END";

    // How often a promotion is checked for its end; a query on an open loopback connection costs well under this.
    private static readonly TimeSpan s_promotePoll = TimeSpan.FromMilliseconds(5);

    /// <summary>The login checks use: sr_check_user, else the entry's forced user, else postgres.</summary>
    public static (string User, string? Password) CheckLogin(ProxyConfig config, DatabaseConfig database, string? user = null, string? password = null)
    {
        var settings = config.FastPool;
        if (user is null)
        {
            user = settings.SrCheckUser ?? database.User ?? "postgres";
            password = settings.SrCheckPassword;
        }

        password ??= database.User == user ? database.Password : null;
        if (password is null && config.AuthFileUsers.TryGetValue(user, out var secret) && secret.Length > 0 && !secret.StartsWith("md5", StringComparison.Ordinal)
            && !secret.StartsWith("SCRAM-SHA-256$", StringComparison.Ordinal))
        {
            password = secret;
        }

        return (user, password);
    }

    public static async Task<ProbeResult> CheckAsync(ProxyRuntime runtime, ProxyConfig config, DatabaseConfig database, Node node,
        (string User, string? Password) login, TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            var row = await QueryAsync(runtime, config, database, node, login, CheckQuery, timeout, ct).ConfigureAwait(false);
            bool inRecovery = row[0] == "t";
            ulong lsn = NodeMonitor.TryParseLsn(row[1], out var parsed) ? parsed : 0;
            double? delay = inRecovery && double.TryParse(row[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) ? Math.Max(0, seconds) : null;
            ulong received = NodeMonitor.TryParseLsn(row[3], out var r) ? r : 0;
            // A WAL file name starts with the timeline as eight hex digits (PostgreSQL docs 30.6 "WAL Internals").
            uint timeline = uint.TryParse(row[5], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var tli) ? tli : 0;
            var check = new NodeCheck(true, inRecovery, lsn, delay, null) { ReceivedLsn = received, StreamingFrom = row[4], Timeline = timeline };
            return new ProbeResult(check, ProbeFailure.None);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new ProbeResult(NodeCheck.Failed($"no answer within {timeout.TotalSeconds:0.###} s"), ProbeFailure.Unanswered);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new ProbeResult(NodeCheck.Failed(ServerConnector.Describe(ex)), Classify(ex));
        }
    }

    /// <summary>A connection of its own to <paramref name="dbName"/> on <paramref name="node"/> (the cache listener's), logged in as <paramref name="login"/>.</summary>
    public static async Task<ServerConnection> OpenAsync(ProxyRuntime runtime, ProxyConfig config, DatabaseConfig database, Node node,
        (string User, string? Password) login, string dbName, TimeSpan timeout, CancellationToken ct)
    {
        var entry = database with { User = login.User, Password = login.Password, DbName = dbName };
        var key = new PoolKey(entry, dbName, login.User, login.Password);
        var pool = new ServerPool(runtime.Pools, key, node, PoolSettings.From(config, entry, null), new LimitCounter(0), new LimitCounter(0), runtime.Time, runtime.Logger);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        return await ServerConnector.OpenAsync(pool, node, 0, runtime.Time.GetTimestamp(), timeout, cts.Token).ConfigureAwait(false);
    }

    /// <summary>Runs one statement on a fresh connection and returns its first row; throws what went wrong.</summary>
    public static async Task<string?[]> QueryAsync(ProxyRuntime runtime, ProxyConfig config, DatabaseConfig database, Node node,
        (string User, string? Password) login, string sql, TimeSpan timeout, CancellationToken ct)
    {
        var entry = database with { User = login.User, Password = login.Password, DbName = config.FastPool.SrCheckDatabase };
        var key = new PoolKey(entry, config.FastPool.SrCheckDatabase, login.User, login.Password);
        var pool = new ServerPool(runtime.Pools, key, node, PoolSettings.From(config, entry, null), new LimitCounter(0), new LimitCounter(0), runtime.Time, runtime.Logger);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        ServerConnection? server = null;
        try
        {
            server = await ServerConnector.OpenAsync(pool, node, 0, runtime.Time.GetTimestamp(), timeout, cts.Token).ConfigureAwait(false);
            return await MessageIo.QueryFirstRowAsync(server, new MessageBuilder(), sql, cts.Token).ConfigureAwait(false);
        }
        catch (ServerException ex) when (cts.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            // server_connect_timeout style errors from the connector are this probe's own timeout.
            throw new OperationCanceledException(ex.Message, ex);
        }
        finally
        {
            if (server is not null)
            {
                await server.TerminateAndCloseAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Promotes a standby and returns once it has left recovery (true), or false when it has not within the
    /// timeout. pg_promote(false) only signals the server; polling pg_is_in_recovery() on the same connection
    /// every few milliseconds notices the end of recovery sooner than pg_promote(true), which checks ten times
    /// a second (PostgreSQL docs 9.27.4; xlogfuncs.c).
    /// </summary>
    public static async Task<bool> PromoteAsync(ProxyRuntime runtime, ProxyConfig config, DatabaseConfig database, Node node,
        (string User, string? Password) login, TimeSpan timeout)
    {
        var entry = database with { User = login.User, Password = login.Password, DbName = config.FastPool.SrCheckDatabase };
        var key = new PoolKey(entry, config.FastPool.SrCheckDatabase, login.User, login.Password);
        var pool = new ServerPool(runtime.Pools, key, node, PoolSettings.From(config, entry, null), new LimitCounter(0), new LimitCounter(0), runtime.Time, runtime.Logger);
        using var cts = new CancellationTokenSource(timeout);
        var server = await ServerConnector.OpenAsync(pool, node, 0, runtime.Time.GetTimestamp(), timeout, cts.Token).ConfigureAwait(false);
        try
        {
            var builder = new MessageBuilder();
            var row = await MessageIo.QueryFirstRowAsync(server, builder, "SELECT pg_is_in_recovery()", cts.Token).ConfigureAwait(false);
            if (row[0] == "t")
            {
                await MessageIo.QueryFirstRowAsync(server, builder, "SELECT pg_promote(false)", cts.Token).ConfigureAwait(false);
            }

            while (row[0] == "t")
            {
                await Task.Delay(s_promotePoll, runtime.Time, cts.Token).ConfigureAwait(false);
                row = await MessageIo.QueryFirstRowAsync(server, builder, "SELECT pg_is_in_recovery()", cts.Token).ConfigureAwait(false);
            }

            return true;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            return false;
        }
        finally
        {
            try
            {
                await server.Connection.SendAsync(Messages.Terminate, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
            {
            }

            await server.Connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static ProbeFailure Classify(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
            {
                return ProbeFailure.Refused;
            }
        }

        if (ex is ServerException se && se.InnerException is null
            && se.SqlState is not (SqlState.SqlClientUnableToEstablishConnection or SqlState.ConnectionFailure or SqlState.CannotConnectNow
                or SqlState.AdminShutdown or "57P02" or SqlState.ProtocolViolation))
        {
            // The server itself refused the login or the query: it is up, whatever it thinks of our credentials.
            return ProbeFailure.Answered;
        }

        return ProbeFailure.Unanswered;
    }
}
