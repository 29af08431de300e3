using System.Buffers;
using FastPool.Protocol;
using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Connections;

/// <summary>
/// Reads the first packet(s) within client_login_timeout: starts TLS on SSLRequest (or on a directly negotiated
/// ClientHello) when client_tls_sslmode allows it and answers 'N' otherwise, answers GSSENCRequest with 'N',
/// serves CancelRequest, rejects malformed packets and unknown protocol versions with the error PostgreSQL
/// itself would send, and negotiates 3.x minor versions and "_pq_." options
/// (PostgreSQL docs 55.2.1 "Start-up", 55.2.10 "SSL Session Encryption", 55.2.11).
/// </summary>
internal sealed partial class StartupStage : IConnectionStage
{
    public async Task InvokeAsync(ClientContext context, ClientDelegate next)
    {
        var packet = await ReadWithinLoginTimeoutAsync(context).ConfigureAwait(false);
        if (packet is null)
        {
            return;
        }

        if (packet.Kind == StartupPacketKind.CancelRequest)
        {
            await context.Runtime.Cancels.ForwardAsync(packet, context.Connection.RemoteEndPoint).ConfigureAwait(false);
            context.CloseReason = "cancel request";
            return;
        }

        if (context.Config.ClientTls.Mode >= TlsMode.Require && !context.IsTls && !IsUnixSocket(context))
        {
            // PgBouncer's answer to a plaintext client under require; unix-socket clients never use TLS, and
            // PgBouncer lets them in too.
            await context.SendErrorAsync(SqlState.InvalidAuthorizationSpecification, "SSL required").ConfigureAwait(false);
            return;
        }

        context.Startup = packet;
        if (context.Config.ApplicationNameAddHost)
        {
            AddHostToApplicationName(packet, IsUnixSocket(context) ? "unix" : context.Connection.RemoteEndPoint);
        }

        if (packet.MinorVersion > 0 || packet.ProtocolOptions.Count > 0)
        {
            // We speak 3.0 and no protocol options: say so, and the client carries on with 3.0 (55.2.1).
            context.Builder.Reset();
            context.Builder.NegotiateProtocolVersion(0, packet.ProtocolOptions);
            await context.Connection.SendAsync(context.Builder.Written).ConfigureAwait(false);
        }

        await next(context).ConfigureAwait(false);
    }

    /// <summary>
    /// application_name_add_host, as PgBouncer: the client's address goes after the application_name it logged in with
    /// ("psql - 10.0.0.7:51234"), so the server's pg_stat_activity tells where a query came from. Only the login's
    /// name: a later SET application_name is the client's to choose.
    /// </summary>
    private static void AddHostToApplicationName(StartupPacket packet, string remote)
    {
        var parameters = packet.Parameters;
        for (int i = 0; i < parameters.Count; i++)
        {
            if (string.Equals(parameters[i].Key, "application_name", StringComparison.Ordinal))
            {
                parameters[i] = new KeyValuePair<string, string>("application_name", parameters[i].Value + " - " + remote);
                return;
            }
        }

        parameters.Add(new KeyValuePair<string, string>("application_name", " - " + remote));
    }

    /// <summary>
    /// The startup packet, or null after answering the client. Its timer lives only as long as the read: this
    /// stage's frame stays alive for the whole session, and an idle client should hold no timer.
    /// </summary>
    private static async Task<StartupPacket?> ReadWithinLoginTimeoutAsync(ClientContext context)
    {
        var timeout = context.Config.ClientLoginTimeout;

        // Linked to the end of a safe shutdown's wait: a client that has not logged in by then is told 57P01.
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.Runtime.DrainOver);
        if (timeout > TimeSpan.Zero)
        {
            cts.CancelAfter(timeout);
        }

        try
        {
            return await ReadStartupAsync(context, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await context.SendLoginStoppedAsync("client_login_timeout (no startup packet received in time)").ConfigureAwait(false);
            return null;
        }
    }

    private static async Task<StartupPacket?> ReadStartupAsync(ClientContext context, CancellationToken ct)
    {
        var input = context.Connection.Input;
        bool sslAnswered = false;
        bool gssAnswered = false;
        while (true)
        {
            var result = await input.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (!sslAnswered && !buffer.IsEmpty && buffer.FirstSpan[0] == TlsHandshakeRecord && TlsAvailable(context))
            {
                // Direct TLS negotiation: the first packet is a ClientHello, not a startup packet (55.2.10).
                var hello = BuffersExtensions.ToArray(buffer);
                input.AdvanceTo(buffer.End);
                if (!await StartTlsAsync(context, hello, direct: true, ct).ConfigureAwait(false))
                {
                    return null;
                }

                sslAnswered = true;
                input = context.Connection.Input;
                continue;
            }

            var status = StartupPacket.TryParse(buffer, out var packet, out long consumed);
            switch (status)
            {
                case StartupParseStatus.Incomplete:
                    input.AdvanceTo(buffer.Start, buffer.End);
                    if (result.IsCompleted)
                    {
                        context.CloseReason = buffer.IsEmpty ? "client disconnected before startup" : "client sent a truncated startup packet";
                        return null;
                    }

                    continue;
                case StartupParseStatus.Malformed:
                    input.AdvanceTo(buffer.End);
                    await context.SendErrorAsync(SqlState.ProtocolViolation, "invalid startup packet layout").ConfigureAwait(false);
                    return null;
                case StartupParseStatus.NoUser:
                    input.AdvanceTo(buffer.End);
                    await context.SendErrorAsync(SqlState.InvalidAuthorizationSpecification, "no PostgreSQL user name specified in startup packet").ConfigureAwait(false);
                    return null;
                case StartupParseStatus.UnsupportedVersion:
                    input.AdvanceTo(buffer.End);
                    await context.SendErrorAsync(SqlState.FeatureNotSupported,
                        $"unsupported frontend protocol {packet!.MajorVersion}.{packet.MinorVersion}: server supports 3.0 to 3.0").ConfigureAwait(false);
                    return null;
            }

            input.AdvanceTo(buffer.GetPosition(consumed));
            switch (packet!.Kind)
            {
                case StartupPacketKind.SslRequest when !sslAnswered && TlsAvailable(context):
                    sslAnswered = true;
                    if (buffer.Length != consumed)
                    {
                        // The client must wait for 'S' before it sends anything (55.2.10). Bytes already here were
                        // sent in plaintext and would be taken as coming over TLS (CVE-2021-23214): refuse them.
                        await context.SendErrorAsync(SqlState.ProtocolViolation, "received unencrypted data after SSL request").ConfigureAwait(false);
                        return null;
                    }

                    await context.Connection.SendAsync(Messages.EncryptionAccepted, ct).ConfigureAwait(false);
                    if (!await StartTlsAsync(context, ReadOnlyMemory<byte>.Empty, direct: false, ct).ConfigureAwait(false))
                    {
                        return null;
                    }

                    input = context.Connection.Input;
                    continue;
                case StartupPacketKind.SslRequest when !sslAnswered:
                    sslAnswered = true;
                    await context.Connection.SendAsync(Messages.EncryptionRefused, ct).ConfigureAwait(false);
                    continue;
                case StartupPacketKind.GssEncRequest when !gssAnswered:
                    gssAnswered = true;
                    await context.Connection.SendAsync(Messages.EncryptionRefused, ct).ConfigureAwait(false);
                    continue;
                case StartupPacketKind.SslRequest:
                case StartupPacketKind.GssEncRequest:
                    await context.SendErrorAsync(SqlState.ProtocolViolation, "duplicate encryption request").ConfigureAwait(false);
                    return null;
                default:
                    return packet;
            }
        }
    }
}
