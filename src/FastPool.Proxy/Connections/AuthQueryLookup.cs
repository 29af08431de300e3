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
/// auth_query, as PgBouncer runs it: for a user not in the auth_file, FastPool logs in as auth_user and asks the
/// server for the user's secret with auth_query, the user name passed as parameter $1 of an extended-protocol
/// statement (PostgreSQL docs 55.2.3), never spliced into the SQL. Answers are cached per database entry and user
/// for auth_query_cache_ttl; concurrent logins of one user share one query. Secrets never reach a log line.
/// </summary>
internal sealed class AuthQueryLookup(ProxyRuntime runtime)
{
    private readonly ConcurrentDictionary<(string Database, string User), Entry> _cache = new();
    private int _scramAnswers;
    private int _md5Answers;

    private sealed record Entry(Task<ClientCredentials> Lookup, long Expires);

    /// <summary>The auth_user for a database entry (its own auth_user=, else [pgbouncer] auth_user); null: no auth_query.</summary>
    public static string? AuthUserFor(ProxyConfig config, DatabaseConfig entry) => entry.AuthUser ?? config.AuthUser;

    /// <summary>
    /// Whether most secrets auth_query returned were SCRAM secrets; true before any (PostgreSQL's default
    /// password_encryption since 14). Under md5 an unknown user gets the exchange most real users get, so the
    /// method asked for does not tell them apart (PostgreSQL docs 21.5 "Password Authentication").
    /// </summary>
    public bool MostlyScram => Volatile.Read(ref _scramAnswers) >= Volatile.Read(ref _md5Answers);

    /// <summary>The user's credentials per auth_query (<see cref="ClientCredentials.None"/> for an unknown user); throws <see cref="AuthQueryException"/>.</summary>
    public async Task<ClientCredentials> LookupAsync(ProxyConfig config, DatabaseConfig entry, string clientDatabase, string user, CancellationToken ct)
    {
        var key = (CacheName(entry, clientDatabase), user);
        var now = runtime.Time.GetTimestamp();
        // A failed lookup is never reused, even if it failed after the client that started it gave up (and so
        // after that client's chance to drop it).
        if (_cache.TryGetValue(key, out var cached) && (!cached.Lookup.IsCompleted || (cached.Lookup.IsCompletedSuccessfully && now < cached.Expires)))
        {
            return await cached.Lookup.WaitAsync(ct).ConfigureAwait(false);
        }

        var ttl = config.FastPool.AuthQueryCacheTtl;
        var lookup = RunAsync(config, entry, clientDatabase, user);
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
    public void Forget(DatabaseConfig entry, string clientDatabase, string user) => _cache.TryRemove((CacheName(entry, clientDatabase), user), out _);

    private static string CacheName(DatabaseConfig entry, string clientDatabase) => entry.Name == "*" ? "*" + clientDatabase : entry.Name;

    private async Task<ClientCredentials> RunAsync(ProxyConfig config, DatabaseConfig entry, string clientDatabase, string user)
    {
        // Off the client's task: the answer is shared, so one client's timeout must not cancel it for the others.
        await Task.Yield();
        var authUser = AuthUserFor(config, entry)!;
        var topology = runtime.GetTopology(entry);
        var node = topology.Primary ?? topology.Nodes[0];
        var login = entry with
        {
            User = authUser,
            Password = entry.User == authUser ? entry.Password : null,
            DbName = entry.AuthDbName ?? config.AuthDbName ?? entry.DbName ?? clientDatabase,
            ConnectQuery = null,
        };
        var key = new PoolKey(login, clientDatabase, authUser, PoolManager.ServerPassword(config, login, authUser));
        var pool = new ServerPool(runtime.Pools, key, node, PoolSettings.From(config, login, null), new LimitCounter(0), new LimitCounter(0), runtime.Time, runtime.Logger);
        var timeout = config.ServerConnectTimeout > TimeSpan.Zero ? config.ServerConnectTimeout : TimeSpan.FromSeconds(15);
        using var cts = new CancellationTokenSource(timeout);
        ServerConnection? server = null;
        try
        {
            server = await ServerConnector.OpenAsync(pool, node, 0, runtime.Time.GetTimestamp(), timeout, cts.Token).ConfigureAwait(false);
            var builder = new MessageBuilder();
            builder.ExtendedQuery(entry.AuthQuery ?? config.AuthQuery, [user]);
            await server.Connection.SendAsync(builder.Written, cts.Token).ConfigureAwait(false);
            var credentials = await ReadAnswerAsync(server, cts.Token).ConfigureAwait(false);
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
            Log.AuthQueryFailed(runtime.Logger, entry.Name, authUser, ex.Message);
            throw;
        }
        catch (Exception ex) when (ex is ServerException or OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            var reason = ex is OperationCanceledException ? $"no answer within {timeout.TotalSeconds:0.###} s" : ServerConnector.Describe(ex);
            Log.AuthQueryFailed(runtime.Logger, entry.Name, authUser, reason);
            throw new AuthQueryException(reason);
        }
        finally
        {
            if (server is not null)
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
    }

    /// <summary>
    /// Reads ParseComplete, BindComplete, the rows, CommandComplete and ReadyForQuery (55.2.3). The answer is the
    /// second column of the only row; no row, or a NULL secret, is a user who cannot log in.
    /// </summary>
    private static async Task<ClientCredentials> ReadAnswerAsync(ServerConnection server, CancellationToken ct)
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
                    problem ??= $"auth_query failed: {error.Message} ({error.Code})";
                    break;
                case BackendCode.ReadyForQuery:
                    problem ??= rows > 1 ? "auth_query returned more than one row" : null;
                    return problem is null ? ClientCredentials.FromSecret(secret) : throw new AuthQueryException(problem);
            }
        }
    }
}
