using System.Net.Sockets;
using FastPool.Protocol;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Connections;

/// <summary>TLS towards clients (PostgreSQL docs 55.2.10 "SSL Session Encryption").</summary>
internal sealed partial class StartupStage
{
    /// <summary>A TLS record of type handshake starts with 0x16; no startup packet can (its length would exceed 350 MB).</summary>
    private const byte TlsHandshakeRecord = 0x16;

    /// <summary>TLS is offered to TCP clients when client_tls_sslmode is not disable; PostgreSQL never uses it on unix sockets.</summary>
    private static bool TlsAvailable(ClientContext context) => context.Config.ClientTls.Enabled && !IsUnixSocket(context);

    private static bool IsUnixSocket(ClientContext context) => context.Connection.Socket.AddressFamily == AddressFamily.Unix;

    /// <summary>
    /// Takes the socket from the plaintext connection and runs the TLS handshake on it. <paramref name="received"/>
    /// is the ClientHello of a directly negotiated connection, already read. False when the handshake failed; the
    /// client is then gone (a TLS failure has no PostgreSQL error to carry it).
    /// </summary>
    private static async Task<bool> StartTlsAsync(ClientContext context, ReadOnlyMemory<byte> received, bool direct, CancellationToken ct)
    {
        var material = TlsMaterial.For(context.Config.ClientTls);
        var socket = context.Connection.Detach();
        TlsConnection tls;
        try
        {
            tls = await TlsConnection.AcceptAsync(socket, material.ServerOptions(), received, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            context.CloseReason = "TLS handshake failed: " + TlsMaterial.Reason(ex);
            return false;
        }
        catch (OperationCanceledException)
        {
            // No PostgreSQL error can be sent in the middle of a TLS handshake.
            context.CloseReason = context.Runtime.DrainOver.IsCancellationRequested
                ? ClientContext.ShutdownMessage
                : "client_login_timeout (TLS handshake not completed in time)";
            return false;
        }

        context.UpgradeConnection(tls);

        // From the material this handshake used: a reload before authentication may bring another certificate.
        context.ChannelBinding = material.ServerEndPoint;
        context.ClientCertificateTrusted = material.IsTrustedClientCertificate(tls.RemoteCertificate, null);
        if (direct && tls.ApplicationProtocol != TlsMaterial.PostgresAlpn)
        {
            // PostgreSQL 17 insists on ALPN for direct negotiation, so a TLS client of another protocol
            // cannot be mistaken for a PostgreSQL client (55.2.10).
            await context.SendErrorAsync(SqlState.ProtocolViolation, "received direct SSL connection request without ALPN protocol negotiation extension").ConfigureAwait(false);
            return false;
        }

        return true;
    }
}
