using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Connections;

/// <summary>Why auth_query gave no answer (the server refused auth_user, the query failed); the message holds no secret.</summary>
internal sealed class AuthQueryException(string message) : Exception(message);

/// <summary>
/// Where auth_query runs for one client database: the entry whose server is asked, the login (auth_user in
/// auth_dbname), the query, and the key its answers are cached under.
/// </summary>
internal sealed record AuthQueryTarget(string EntryName, string ClientDatabase, DatabaseConfig Login, string Query, string CacheKey);

/// <summary>
/// auth_query, as PgBouncer runs it: for a user not in the auth_file, FastPool asks the server for the user's secret
/// as auth_user with auth_query, the user name passed as parameter $1 of an extended-protocol statement (PostgreSQL
/// docs 55.2.3), never spliced into the SQL. The lookups borrow a connection from a small pool per (database,
/// auth_user), kept between lookups. Answers are cached per database and user for auth_query_cache_ttl; concurrent
/// logins of one user share one query. Secrets never reach a log line.
/// </summary>
internal sealed class AuthQueryLookup(ProxyRuntime runtime)
{
    /// <summary>The cache key of the admin console's lookups: no [databases] entry can have this name.</summary>
    private const string ConsoleCacheKey = "\0console";

    private readonly ConcurrentDictionary<(string Database, string User), Entry> _cache = new();
    private int _scramAnswers;
    private int _md5Answers;

    private sealed record Entry(Task<ClientCredentials> Lookup, long Expires);

    /// <summary>
    /// Where a user of <paramref name="clientDatabase"/> is looked up; null when auth_query does not apply. For a
    /// database entry: its auth_user= (else [pgbouncer] auth_user), logging in to its auth_dbname= (else the global
    /// one, else the entry's own database). For the admin console (<paramref name="entry"/> null), as in PgBouncer:
    /// the global auth_user, on the [databases] entry that the global auth_dbname names (in its database).
    /// </summary>
    public static AuthQueryTarget? TargetFor(ProxyConfig config, DatabaseConfig? entry, string clientDatabase)
    {
        if (entry is not null)
        {
            var authUser = entry.AuthUser ?? config.AuthUser;
            if (authUser is null)
            {
                return null;
            }

            var login = entry with
            {
                User = authUser,
                Password = entry.User == authUser ? entry.Password : null,
                DbName = entry.AuthDbName ?? config.AuthDbName ?? entry.DbName ?? clientDatabase,
                ConnectQuery = null,
            };
            return new AuthQueryTarget(entry.Name, clientDatabase, login, entry.AuthQuery ?? config.AuthQuery, PoolKey.DatabaseKeyOf(entry, clientDatabase));
        }

        if (config.AuthUser is not { } consoleUser || config.AuthDbName is not { } authDb || config.FindDatabase(authDb) is not { } authEntry)
        {
            return null;
        }

        var consoleLogin = authEntry with
        {
            User = consoleUser,
            Password = authEntry.User == consoleUser ? authEntry.Password : null,
            DbName = authEntry.DbName ?? authDb,
            ConnectQuery = null,
        };
        return new AuthQueryTarget(authEntry.Name, authDb, consoleLogin, config.AuthQuery, ConsoleCacheKey);
    }

    /// <summary>
    /// Whether most secrets auth_query returned were SCRAM secrets; true before any (PostgreSQL's default
    /// password_encryption since 14). Under md5 an unknown user gets the exchange most real users get, so the
    /// method asked for does not tell them apart (PostgreSQL docs 21.5 "Password Authentication").
    /// </summary>
    public bool MostlyScram => Volatile.Read(ref _scramAnswers) >= Volatile.Read(ref _md5Answers);

    /// <summary>
    /// The user's credentials per auth_query: <see cref="ClientCredentials.None"/> for an unknown user (no row),
    /// <see cref="ClientCredentials.NoSecret"/> for one without a usable secret; throws <see cref="AuthQueryException"/>.
    /// </summary>
    public async Task<ClientCredentials> LookupAsync(ProxyConfig config, AuthQueryTarget target, string user, CancellationToken ct)
    {
        var key = (target.CacheKey, user);
        var now = runtime.Time.GetTimestamp();
        // A failed lookup is never reused, even if it failed after the client that started it gave up (and so
        // after that client's chance to drop it).
        if (_cache.TryGetValue(key, out var cached) && (!cached.Lookup.IsCompleted || (cached.Lookup.IsCompletedSuccessfully && now < cached.Expires)))
        {
            return await cached.Lookup.WaitAsync(ct).ConfigureAwait(false);
        }

        var ttl = config.FastPool.AuthQueryCacheTtl;
        var lookup = RunAsync(config, target, user);
        var fresh = new Entry(lookup, now + (long)(ttl.TotalSeconds * runtime.Time.TimestampFrequency));
        _cache[key] = fresh;
        try
        {
            return await lookup.WaitAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            // A failed query is not an answer: the next login asks again. Nor is anything kept without a TTL.
            if (lookup.IsFaulted || ttl <= TimeSpan.Zero)
            {
                _cache.TryRemove(KeyValuePair.Create(key, fresh));
            }
        }
    }

    /// <summary>Drops the cached answer after a failed login: the password may have just changed on the server.</summary>
    public void Forget(AuthQueryTarget target, string user) => _cache.TryRemove((target.CacheKey, user), out _);

    private async Task<ClientCredentials> RunAsync(ProxyConfig config, AuthQueryTarget target, string user)
    {
        // Off the client's task: the answer is shared, so one client's timeout must not cancel it for the others.
        await Task.Yield();
        var authUser = target.Login.User!;
        var topology = runtime.GetTopology(target.Login);
        var node = topology.Primary ?? topology.Nodes[0];
        var pool = runtime.Pools.GetAuthQueryPool(target.Login, target.ClientDatabase, node);
        var timeout = config.ServerConnectTimeout > TimeSpan.Zero ? config.ServerConnectTimeout : TimeSpan.FromSeconds(15);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            ClientCredentials credentials;
            try
            {
                credentials = await QueryAsync(pool, target.Query, user, cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsLostConnection(ex) && !cts.IsCancellationRequested)
            {
                // The pooled connection was closed by the server while idle (restart, pg_terminate_backend,
                // idle_session_timeout): once more, on another connection, before the client is told anything.
                credentials = await QueryAsync(pool, target.Query, user, cts.Token).ConfigureAwait(false);
            }

            if (credentials.Kind == CredentialKind.Scram)
            {
                Interlocked.Increment(ref _scramAnswers);
            }
            else if (credentials.Kind == CredentialKind.Md5)
            {
                Interlocked.Increment(ref _md5Answers);
            }

            return credentials;
        }
        catch (AuthQueryException ex)
        {
            Log.AuthQueryFailed(runtime.Logger, target.EntryName, authUser, ex.Message);
            throw;
        }
        catch (Exception ex) when (ex is ServerException or OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            var reason = ex is OperationCanceledException ? $"no answer within {timeout.TotalSeconds:0.###} s" : ServerConnector.Describe(ex);
            Log.AuthQueryFailed(runtime.Logger, target.EntryName, authUser, reason);
            throw new AuthQueryException(reason);
        }
    }

    private static ClientCredentials FoundUser(string? secret) =>
        ClientCredentials.FromSecret(secret) is { Kind: not CredentialKind.None } credentials ? credentials : ClientCredentials.NoSecret;

    private static bool IsLostConnection(Exception ex) =>
        ex is IOException or SocketException or ObjectDisposedException
        || (ex is ServerException se && se.SqlState is SqlState.ConnectionFailure or SqlState.AdminShutdown);

    /// <summary>One lookup on a connection borrowed from the pool, returned when the answer was read to its end.</summary>
    private static async Task<ClientCredentials> QueryAsync(ServerPool pool, string query, string user, CancellationToken ct)
    {
        var server = await pool.AcquireAsync(ct).ConfigureAwait(false);
        bool clean = false;
        try
        {
            var builder = new MessageBuilder();
            builder.ExtendedQuery(query, [user]);
            await server.Connection.SendAsync(builder.Written, ct).ConfigureAwait(false);
            var (credentials, problem) = await ReadAnswerAsync(server, ct).ConfigureAwait(false);

            // Read up to ReadyForQuery, answer or not: the connection is back at a message boundary.
            clean = true;
            return problem is null ? credentials : throw new AuthQueryException(problem);
        }
        finally
        {
            // Release checks that it is idle outside a transaction. A lookup cut off mid-answer leaves the
            // connection in an unknown state: it is closed, never handed to the next lookup.
            if (clean)
            {
                pool.Release(server);
            }
            else
            {
                pool.Close(server);
            }
        }
    }

    /// <summary>
    /// Reads ParseComplete, BindComplete, the rows, CommandComplete and ReadyForQuery (55.2.3). The answer is the
    /// second column of the only row; no row, or a NULL secret, is a user who cannot log in. A query that failed or
    /// answered in an unusable shape gives the problem instead (after its ReadyForQuery all the same).
    /// </summary>
    private static async Task<(ClientCredentials Credentials, string? Problem)> ReadAnswerAsync(ServerConnection server, CancellationToken ct)
    {
        string? secret = null;
        int rows = 0;
        string? problem = null;
        while (true)
        {
            var (code, body) = await MessageIo.ReadMessageAsync(server.Connection.Input, ct).ConfigureAwait(false);
            var seq = new ReadOnlySequence<byte>(body);
            switch ((BackendCode)code)
            {
                case BackendCode.DataRow when BackendMessages.TryReadDataRow(seq, out var columns):
                    if (++rows == 1)
                    {
                        int i = 0;
                        foreach (var value in columns)
                        {
                            if (i++ == 1)
                            {
                                secret = value.IsNull ? null : EncodingExtensions.GetString(Encoding.UTF8, value.Data);
                            }
                        }

                        problem ??= i < 2 ? "auth_query must return two columns (user name, secret)" : null;
                    }

                    break;
                case BackendCode.ErrorResponse:
                    var error = BackendMessageReader.ReadErrorFields(seq);
                    if (error.Severity is "FATAL" or "PANIC")
                    {
                        // The backend is going away (terminated, shut down): no ReadyForQuery follows.
                        throw new ServerException(SqlState.ConnectionFailure, $"auth_query failed: {error.Message} ({error.Code})");
                    }

                    problem ??= $"auth_query failed: {error.Message} ({error.Code})";
                    break;
                case BackendCode.ReadyForQuery:
                    server.TransactionStatus = BackendMessageReader.ReadReadyForQuery(seq);
                    problem ??= rows > 1 ? "auth_query returned more than one row" : null;
                    return (problem is not null || rows == 0 ? ClientCredentials.None : FoundUser(secret), problem);
            }
        }
    }
}
