using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace FastPool.Protocol.Scram;

/// <summary>
/// tls-server-end-point channel binding data (RFC 5929 section 4.1), the only type PostgreSQL supports for
/// SCRAM-SHA-256-PLUS (PostgreSQL docs 55.3.1): the hash of the server's certificate (DER), with the hash of the
/// certificate's signature algorithm, except that MD5 and SHA-1 are replaced by SHA-256.
/// </summary>
public static class TlsServerEndPoint
{
    /// <summary>The binding data, or null when the signature algorithm names no single hash (RSASSA-PSS, EdDSA), as PostgreSQL also refuses those.</summary>
    public static byte[]? Compute(X509Certificate2 certificate)
    {
        var raw = certificate.RawData;
        return certificate.SignatureAlgorithm.Value switch
        {
            // md5WithRSA, sha1WithRSA, sha1 DSA and ECDSA, sha256 RSA, DSA and ECDSA: SHA-256.
            "1.2.840.113549.1.1.4" or "1.2.840.113549.1.1.5" or "1.2.840.10040.4.3" or "1.2.840.10045.4.1"
                or "1.2.840.113549.1.1.11" or "2.16.840.1.101.3.4.3.2" or "1.2.840.10045.4.3.2" => SHA256.HashData(raw),
            "1.2.840.113549.1.1.12" or "1.2.840.10045.4.3.3" or "2.16.840.1.101.3.4.3.3" => SHA384.HashData(raw),
            "1.2.840.113549.1.1.13" or "1.2.840.10045.4.3.4" or "2.16.840.1.101.3.4.3.4" => SHA512.HashData(raw),
            _ => null,
        };
    }
}
