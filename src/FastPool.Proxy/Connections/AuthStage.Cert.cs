using FastPool.Protocol;

namespace FastPool.Proxy.Connections;

/// <summary>
/// Certificate authentication (PostgreSQL docs 21.12 "Certificate Authentication", PgBouncer's auth_type = cert):
/// the client presented, during the TLS handshake, a certificate that chains to client_tls_ca_file, and its common
/// name is the user name it logs in as. No password is asked for.
/// </summary>
internal sealed partial class AuthStage
{
    private const string CommonNameOid = "2.5.4.3";

    private static async Task<bool> CertAsync(ClientContext context)
    {
        var certificate = (context.Connection as Transport.TlsConnection)?.RemoteCertificate;
        if (certificate is null || !context.ClientCertificateTrusted)
        {
            await context.SendErrorAsync(SqlState.InvalidAuthorizationSpecification, "connection requires a valid client certificate").ConfigureAwait(false);
            return false;
        }

        if (!string.Equals(CommonName(certificate), context.User, StringComparison.Ordinal))
        {
            await context.SendErrorAsync(SqlState.InvalidAuthorizationSpecification, $"certificate authentication failed for user \"{context.User}\"").ConfigureAwait(false);
            return false;
        }

        return true;
    }

    /// <summary>The subject's CN exactly (not the fallbacks X509NameType.SimpleName would take); null when there is none or more than one.</summary>
    private static string? CommonName(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate)
    {
        string? found = null;
        foreach (var rdn in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (rdn.GetSingleElementType().Value == CommonNameOid)
            {
                if (found is not null)
                {
                    return null;
                }

                found = rdn.GetSingleElementValue();
            }
        }

        return found;
    }
}
