using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FastPool.Protocol.Scram;
using FastPool.Proxy.Configuration;

namespace FastPool.Proxy.Transport;

/// <summary>
/// The certificates, keys and SslStream options of one side's <see cref="TlsSettings"/>, loaded once per config
/// snapshot (a reload that changes a file name makes a new settings object, hence new material).
/// </summary>
internal sealed class TlsMaterial
{
    /// <summary>The ALPN protocol PostgreSQL 17 requires on directly negotiated TLS (55.2.10 "SSL Session Encryption").</summary>
    public static readonly SslApplicationProtocol PostgresAlpn = new("postgresql"u8.ToArray());

    private static readonly ConditionalWeakTable<TlsSettings, TlsMaterial> s_cache = new();

    private readonly TlsSettings _settings;
    private readonly SslStreamCertificateContext? _certificate;
    private readonly X509Certificate2Collection? _roots;
    private readonly CipherSuitesPolicy? _ciphers;

    private TlsMaterial(TlsSettings settings)
    {
        _settings = settings;
        if (settings.CertFile is not null && settings.KeyFile is not null)
        {
            var leaf = X509Certificate2.CreateFromPemFile(settings.CertFile, settings.KeyFile);
            var all = new X509Certificate2Collection();
            all.ImportFromPemFile(settings.CertFile);
            var intermediates = new X509Certificate2Collection();
            foreach (var cert in all)
            {
                if (cert.Thumbprint != leaf.Thumbprint)
                {
                    intermediates.Add(cert);
                }
            }

            _certificate = SslStreamCertificateContext.Create(leaf, intermediates, offline: true);
            ServerEndPoint = TlsServerEndPoint.Compute(leaf);
        }

        if (settings.CaFile is not null)
        {
            _roots = [];
            _roots.ImportFromPemFile(settings.CaFile);
            if (_roots.Count == 0)
            {
                throw new CryptographicException($"no certificate found in {settings.CaFile}");
            }
        }

        if (settings.EffectiveCipherSuites() is { } suites && (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()))
        {
            _ciphers = new CipherSuitesPolicy(suites);
        }
    }

    /// <summary>
    /// tls-server-end-point channel binding data of the certificate this side presents (RFC 5929 section 4.1): what
    /// SCRAM-SHA-256-PLUS binds a client's login to. Null without a certificate, or when its signature algorithm
    /// names no single hash (RSASSA-PSS, EdDSA): then -PLUS is not offered.
    /// </summary>
    public byte[]? ServerEndPoint { get; }

    public static TlsMaterial For(TlsSettings settings) => s_cache.GetValue(settings, static s => new TlsMaterial(s));

    /// <summary>What is wrong with the settings as a whole (missing files, files that do not load); empty when usable.</summary>
    public static List<string> Check(TlsSettings settings, bool clientSide)
    {
        var prefix = clientSide ? "client_tls" : "server_tls";
        var problems = new List<string>();
        if (clientSide && settings.Enabled && (settings.CertFile is null || settings.KeyFile is null))
        {
            problems.Add($"{prefix}_sslmode = {settings.Mode} needs {prefix}_cert_file and {prefix}_key_file");
        }

        if (!clientSide && (settings.CertFile is null) != (settings.KeyFile is null))
        {
            problems.Add($"{prefix}_cert_file and {prefix}_key_file go together: set both or neither");
        }

        if (clientSide && settings.VerifiesCertificate && settings.CaFile is null)
        {
            problems.Add($"{prefix}_sslmode = {settings.Mode} needs {prefix}_ca_file to check client certificates against");
        }

        if (problems.Count == 0)
        {
            try
            {
                _ = new TlsMaterial(settings);
            }
            catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                problems.Add($"cannot load the {prefix} certificate, key or CA file: {ex.Message}");
            }
        }

        return problems;
    }

    /// <summary>Options for accepting a client; a client certificate is asked for whenever there is a CA to check it against.</summary>
    public SslServerAuthenticationOptions ServerOptions() => new()
    {
        ServerCertificateContext = _certificate,
        EnabledSslProtocols = _settings.Protocols,
        CipherSuitesPolicy = _ciphers,
        ClientCertificateRequired = _roots is not null,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        ApplicationProtocols = [PostgresAlpn],
        RemoteCertificateValidationCallback = (_, certificate, chain, _) =>

            // PgBouncer: under allow/prefer/require a presented certificate is not validated; verify-* needs a valid one.
            !_settings.VerifiesCertificate || IsTrustedClientCertificate(certificate, chain),
    };

    /// <summary>Options for connecting to a server at <paramref name="host"/> (the name verify-full checks).</summary>
    public SslClientAuthenticationOptions ClientOptions(string host) => new()
    {
        TargetHost = host,
        EnabledSslProtocols = _settings.Protocols,
        CipherSuitesPolicy = _ciphers,
        ClientCertificateContext = _certificate,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, chain, errors) => _settings.Mode switch
        {
            TlsMode.VerifyCa => ChainsToRoots(certificate, chain, errors),
            TlsMode.VerifyFull => ChainsToRoots(certificate, chain, errors) && (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0,
            _ => true,
        },
    };

    /// <summary>A client certificate that chains to client_tls_ca_file (what certificate authentication relies on).</summary>
    public bool IsTrustedClientCertificate(X509Certificate? certificate, X509Chain? presented) =>
        _roots is not null && certificate is not null && ChainsToRoots(certificate, presented, SslPolicyErrors.None);

    private bool ChainsToRoots(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        if (certificate is null)
        {
            return false;
        }

        if (_roots is null)
        {
            // No CA file: the system's trust store, as SslStream already checked it.
            return (errors & (SslPolicyErrors.RemoteCertificateChainErrors | SslPolicyErrors.RemoteCertificateNotAvailable)) == 0;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_roots);
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(leaf);
    }

    /// <summary>For log lines: "TLSv1.3/TLS_AES_256_GCM_SHA384".</summary>
    public static string Describe(SslStream ssl) => $"{ssl.SslProtocol}/{ssl.NegotiatedCipherSuite}";

    /// <summary>Turns handshake failures into one short reason (never the peer's bytes).</summary>
    public static string Reason(Exception ex) => ex switch
    {
        AuthenticationException a => a.InnerException?.Message ?? a.Message,
        _ => ex.Message,
    };
}
