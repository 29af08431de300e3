using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace FastPool.IntegrationTests.Tls;

/// <summary>
/// Certificates made at run time for the TLS tests (nothing is committed): a CA, server certificates for
/// 127.0.0.1/localhost and for a name that never matches, and client certificates with CN = a user name.
/// ECDSA P-256 with SHA-256 signatures, so tls-server-end-point hashes with SHA-256 (RFC 5929 section 4.1).
/// Written once per run as PEM files in a temporary directory; private keys are mode 0600, as libpq and
/// PostgreSQL insist.
/// </summary>
internal sealed class TestPki
{
    private static readonly Lazy<TestPki> s_shared = new(() => new TestPki(System.IO.Directory.CreateTempSubdirectory("fastpool-pki-").FullName));

    private readonly X509Certificate2 _ca;
    private readonly ECDsa _caKey;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (string Cert, string Key)> _issued = [];

    public TestPki(string directory)
    {
        Directory = directory;
        _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=FastPool Test CA", _caKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        _ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        CaFile = Path.Combine(directory, "ca.crt");
        File.WriteAllText(CaFile, _ca.ExportCertificatePem());

        // A second, unrelated CA: certificates it signs must be refused.
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var other = new CertificateRequest("CN=Someone Else's CA", otherKey, HashAlgorithmName.SHA256);
        other.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        OtherCaFile = Path.Combine(directory, "other-ca.crt");
        File.WriteAllText(OtherCaFile, other.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1)).ExportCertificatePem());
    }

    public static TestPki Shared => s_shared.Value;

    public string Directory { get; }

    public string CaFile { get; }

    public string OtherCaFile { get; }

    /// <summary>A server certificate for 127.0.0.1 and localhost.</summary>
    public (string Cert, string Key) Server => Issue("server", "127.0.0.1", server: true, ["127.0.0.1", "localhost"]);

    /// <summary>A server certificate for db.example.invalid only: verify-full against 127.0.0.1 must fail.</summary>
    public (string Cert, string Key) WrongHost => Issue("wronghost", "db.example.invalid", server: true, ["db.example.invalid"]);

    /// <summary>A client certificate with CN = <paramref name="user"/>.</summary>
    public (string Cert, string Key) Client(string user) => Issue("client-" + user, user, server: false, []);

    private (string Cert, string Key) Issue(string name, string commonName, bool server, string[] names)
    {
        lock (_lock)
        {
            if (_issued.TryGetValue(name, out var files))
            {
                return files;
            }

            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=" + commonName, key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
                [new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
            request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
            if (names.Length > 0)
            {
                var san = new SubjectAlternativeNameBuilder();
                foreach (var n in names)
                {
                    if (IPAddress.TryParse(n, out var ip))
                    {
                        san.AddIpAddress(ip);
                    }
                    else
                    {
                        san.AddDnsName(n);
                    }
                }

                request.CertificateExtensions.Add(san.Build());
            }

            var serial = RandomNumberGenerator.GetBytes(16);
            serial[0] &= 0x7F;
            using var cert = request.Create(_ca.SubjectName, X509SignatureGenerator.CreateForECDsa(_caKey),
                DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), serial);
            files = (Path.Combine(Directory, name + ".crt"), Path.Combine(Directory, name + ".key"));
            File.WriteAllText(files.Cert, cert.ExportCertificatePem());
            File.WriteAllText(files.Key, key.ExportPkcs8PrivateKeyPem());
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(files.Key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            _issued[name] = files;
            return files;
        }
    }
}
