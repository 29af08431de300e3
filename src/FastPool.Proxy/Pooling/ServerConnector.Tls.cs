using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Topology;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Pooling;

/// <summary>TLS to PostgreSQL (PostgreSQL docs 55.2.10 "SSL Session Encryption"), as server_tls_sslmode says.</summary>
internal static partial class ServerConnector
{
    /// <summary>
    /// Sends SSLRequest; on 'S' runs the TLS handshake on the socket and returns the TLS connection, on 'N' returns
    /// the plaintext connection unless the mode requires TLS.
    /// </summary>
    private static async Task<Connection> StartTlsAsync(Connection plain, Node node, TlsSettings tls, CancellationToken ct)
    {
        await plain.SendAsync(Messages.SslRequest, ct).ConfigureAwait(false);
        var input = plain.Input;
        var result = await input.ReadAsync(ct).ConfigureAwait(false);
        var buffer = result.Buffer;
        if (buffer.IsEmpty)
        {
            input.AdvanceTo(buffer.End);
            throw new ServerException(SqlState.ConnectionFailure, "server closed the connection unexpectedly (after SSLRequest)");
        }

        byte answer = buffer.FirstSpan[0];
        switch (answer)
        {
            case (byte)'S':
                if (buffer.Length > 1)
                {
                    // The handshake must come next; bytes already here came in plaintext and would be read as if
                    // protected by TLS (CVE-2021-23222): refuse them.
                    input.AdvanceTo(buffer.End);
                    throw new ServerException(SqlState.ProtocolViolation, "received unencrypted data after SSL response");
                }

                input.AdvanceTo(buffer.End);
                var socket = plain.Detach();
                await plain.DisposeAsync().ConfigureAwait(false);
                return await TlsConnection.ConnectAsync(socket, TlsMaterial.For(tls).ClientOptions(node.Endpoint.Host), ct).ConfigureAwait(false);
            case (byte)'N':
                input.AdvanceTo(buffer.GetPosition(1));
                if (tls.Mode >= TlsMode.Require)
                {
                    throw new ServerException(SqlState.SqlClientUnableToEstablishConnection,
                        $"server {node.Endpoint.Host}:{node.Endpoint.Port} does not support SSL, but server_tls_sslmode = {ModeName(tls.Mode)} requires it");
                }

                return plain;
            default:
                // 'E' (a server too old to know SSLRequest, or one that failed to start the backend) or garbage.
                input.AdvanceTo(buffer.End);
                throw new ServerException(SqlState.ProtocolViolation, $"server answered SSLRequest with '{(char)answer}' instead of 'S' or 'N'");
        }
    }

    private static string Security(ServerConnection server, LoginState login)
    {
        var tls = server.Connection is TlsConnection t ? t.Description : "no TLS";
        return login.Mechanism is null ? tls : tls + ", " + login.Mechanism + (login.Passthrough is null ? string.Empty : " passthrough");
    }

    private static string ModeName(TlsMode mode) => mode switch
    {
        TlsMode.VerifyCa => "verify-ca",
        TlsMode.VerifyFull => "verify-full",
        _ => mode.ToString().ToLowerInvariant(),
    };
}
