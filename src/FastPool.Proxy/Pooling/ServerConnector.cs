using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using FastPool.Protocol;
using FastPool.Proxy.Topology;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Pooling;

/// <summary>Opens a connection to PostgreSQL and logs in (55.2.1 "Start-up"), within server_connect_timeout.</summary>
internal static partial class ServerConnector
{
    /// <summary>A new, unconnected socket for the node and the address to connect it to (resolving a host name).</summary>
    public static async Task<(Socket Socket, EndPoint Remote)> CreateSocketAsync(Node node, CancellationToken ct)
    {
        var endpoint = node.Endpoint;
        if (endpoint.Host.StartsWith('/'))
        {
            // A host starting with '/' is a unix socket directory, as in libpq.
            return (new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified),
                new UnixDomainSocketEndPoint(Path.Combine(endpoint.Host, $".s.PGSQL.{endpoint.Port}")));
        }

        if (!IPAddress.TryParse(endpoint.Host, out var address))
        {
            var addresses = await Dns.GetHostAddressesAsync(endpoint.Host, ct).ConfigureAwait(false);
            address = addresses.Length > 0 ? addresses[0] : throw new SocketException((int)SocketError.HostNotFound);
        }

        return (new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }, new IPEndPoint(address, endpoint.Port));
    }

    /// <summary>A plain .NET socket connected to the node, for one-off exchanges outside any pool (cancel requests).</summary>
    public static async Task<Socket> ConnectSocketAsync(Node node, CancellationToken ct)
    {
        var (socket, remote) = await CreateSocketAsync(node, ct).ConfigureAwait(false);
        try
        {
            await socket.ConnectAsync(remote, ct).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects and logs in; the returned connection is idle (after ReadyForQuery).</summary>
    public static async Task<ServerConnection> OpenAsync(ServerPool pool, Node node, long generation, long now, TimeSpan timeout, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (timeout > TimeSpan.Zero)
        {
            cts.CancelAfter(timeout);
        }

        Connection? connection = null;
        try
        {
            var (socket, remote) = await CreateSocketAsync(node, cts.Token).ConfigureAwait(false);
            try
            {
                connection = await pool.Transport.ConnectAsync(socket, remote, cts.Token).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            var tls = pool.ServerTls;
            if (tls.Enabled && remote is IPEndPoint)
            {
                // PostgreSQL has no TLS on unix sockets; libpq does not ask for it there either.
                connection = await StartTlsAsync(connection, node, tls, cts.Token).ConfigureAwait(false);
            }

            var server = new ServerConnection(connection, node, pool, generation, now);
            await LoginAsync(server, pool, cts.Token).ConfigureAwait(false);
            return server;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            await DisposeQuietly(connection).ConfigureAwait(false);
            throw new ServerException(SqlState.SqlClientUnableToEstablishConnection,
                $"could not connect to server {node.Endpoint.Host}:{node.Endpoint.Port}: timed out after {timeout.TotalSeconds:0.###} s (server_connect_timeout)");
        }
        catch (SocketException ex)
        {
            await DisposeQuietly(connection).ConfigureAwait(false);
            throw new ServerException(SqlState.SqlClientUnableToEstablishConnection,
                $"could not connect to server {node.Endpoint.Host}:{node.Endpoint.Port}: {ex.Message}", inner: ex);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            await DisposeQuietly(connection).ConfigureAwait(false);
            throw new ServerException(SqlState.SqlClientUnableToEstablishConnection,
                $"could not connect to server {node.Endpoint.Host}:{node.Endpoint.Port}: TLS handshake failed: {TlsMaterial.Reason(ex)}", inner: ex);
        }
        catch
        {
            await DisposeQuietly(connection).ConfigureAwait(false);
            throw;
        }
    }

    private static async ValueTask DisposeQuietly(Connection? connection)
    {
        if (connection is not null)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task LoginAsync(ServerConnection server, ServerPool pool, CancellationToken ct)
    {
        var key = pool.Key;
        var builder = new MessageBuilder();
        builder.StartupMessage(key.StartupParameters);
        await server.Connection.SendAsync(builder.Written, ct).ConfigureAwait(false);
        var login = new LoginState(key, pool.Manager);
        while (true)
        {
            var (code, body) = await MessageIo.ReadMessageAsync(server.Connection.Input, ct).ConfigureAwait(false);
            var seq = new ReadOnlySequence<byte>(body);
            switch ((BackendCode)code)
            {
                case BackendCode.Authentication:
                    await AnswerAuthenticationAsync(server, seq, builder, login, ct).ConfigureAwait(false);
                    break;
                case BackendCode.ParameterStatus:
                    server.RecordParameter(seq);
                    break;
                case BackendCode.BackendKeyData:
                    if (BackendMessageReader.TryReadBackendKeyData(seq, out int pid, out var secret))
                    {
                        server.BackendProcessId = pid;
                        server.BackendSecretKey = secret;
                    }

                    break;
                case BackendCode.ErrorResponse:
                    var error = BackendMessageReader.ReadErrorFields(seq);
                    if (login.Passthrough is { } keys && error.Code == SqlState.InvalidPassword)
                    {
                        // The server no longer takes these keys (its secret changed): the next client SCRAM login
                        // brings fresh ones; until then the login fails like any wrong password.
                        pool.Manager.Secrets.Forget(key.DatabaseKey, key.User, keys);
                    }

                    throw ServerException.FromServer(error);
                case BackendCode.NegotiateProtocolVersion:
                case BackendCode.NoticeResponse:
                    break;
                case BackendCode.ReadyForQuery:
                    server.TransactionStatus = BackendMessageReader.ReadReadyForQuery(seq);
                    server.Security = Security(server, login);
                    return;
                default:
                    throw new ServerException(SqlState.ProtocolViolation, $"unexpected message '{(char)code}' from server during login");
            }
        }
    }

    private static async Task AnswerAuthenticationAsync(ServerConnection server, ReadOnlySequence<byte> body, MessageBuilder builder, LoginState login, CancellationToken ct)
    {
        if (!BackendMessageReader.TryReadAuthentication(body, out var code, out var data))
        {
            throw new ServerException(SqlState.ProtocolViolation, "malformed authentication request from server");
        }

        switch (code)
        {
            case AuthenticationCode.Ok:
                // After SASL, Ok counts only once the server proved it knows the secret (RFC 5802 section 9):
                // otherwise anything answering on the server's address could skip the last step.
                if (login.Scram is { ServerVerified: false })
                {
                    throw new ServerException(SqlState.ProtocolViolation, "server sent AuthenticationOk before completing SCRAM authentication");
                }

                return;
            case AuthenticationCode.Sasl:
            case AuthenticationCode.SaslContinue:
            case AuthenticationCode.SaslFinal:
                if (code == AuthenticationCode.SaslContinue)
                {
                    // The client proof needs PBKDF2 (milliseconds): on the thread pool, not on an I/O loop thread.
                    await Task.Yield();
                }

                if (!AnswerSasl(code, data, builder, login, server.Connection as TlsConnection))
                {
                    return;
                }

                break;
            case AuthenticationCode.CleartextPassword:
                builder.Reset();
                builder.PasswordMessage(RequirePassword(login.Key));
                break;
            case AuthenticationCode.Md5Password:
                builder.Reset();
                // A plain password, or an md5 secret: md5(secret-without-prefix + salt) is what the password gives too.
                var md5 = login.Key.Password ?? login.Manager.Secrets.Md5For(login.Manager.Config, login.Key.DatabaseKey, login.Key.User) ?? RequirePassword(login.Key);
                builder.PasswordMessage(Messages.Md5Password(login.Key.User, md5, data.Slice(0, 4).ToArray()));
                break;
            default:
                throw new ServerException(SqlState.InvalidAuthorizationSpecification,
                    $"server requested authentication method {code}, which FastPool cannot answer yet (server login needs trust, password, md5 or scram-sha-256)");
        }

        await server.Connection.SendAsync(builder.Written, ct).ConfigureAwait(false);
    }

    private static string RequirePassword(PoolKey key) =>
        key.Password ?? throw new ServerException(SqlState.InvalidPassword,
            $"server asked for a password for user \"{key.User}\" and none is configured (password= in [databases] or the auth_file)"
            + " and no client has logged in as this user with SCRAM yet (SCRAM passthrough)");

    internal static string Describe(Exception ex) => ex switch
    {
        ServerException se => se.Message,
        SocketException so => so.Message,
        _ => ex.GetType().Name + ": " + ex.Message,
    };
}
