using System.Net.Security;
using System.Security.Authentication;

namespace FastPool.Proxy.Configuration;

/// <summary>client_tls_sslmode / server_tls_sslmode, with PgBouncer's meaning (its pgbouncer.ini reference).</summary>
public enum TlsMode
{
    /// <summary>Plain TCP; a client's SSLRequest is answered 'N', no SSLRequest is sent to servers.</summary>
    Disable,

    /// <summary>Clients: TLS if they ask. Servers: treated like prefer (PgBouncer leaves it unimplemented too).</summary>
    Allow,

    /// <summary>Clients: TLS if they ask. Servers: TLS if the server agrees, certificate not checked.</summary>
    Prefer,

    /// <summary>TLS or no connection; certificates not checked.</summary>
    Require,

    /// <summary>TLS with a certificate that chains to the CA file (clients must present one).</summary>
    VerifyCa,

    /// <summary>verify-ca, and towards servers the host name must match the certificate.</summary>
    VerifyFull,
}

/// <summary>One side's TLS settings (client_tls_* or server_tls_*). File paths are absolute once loaded.</summary>
public sealed record TlsSettings
{
    public TlsMode Mode { get; init; } = TlsMode.Disable;

    public string? KeyFile { get; init; }

    public string? CertFile { get; init; }

    public string? CaFile { get; init; }

    /// <summary>*_tls_protocols; PgBouncer's default "secure" is TLS 1.2 and 1.3.</summary>
    public SslProtocols Protocols { get; init; } = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>*_tls_ciphers as IANA suite names; null keeps the TLS library's defaults.</summary>
    public IReadOnlyList<TlsCipherSuite>? CipherSuites { get; init; }

    /// <summary>*_tls13_ciphers: the TLS 1.3 suites (as in OpenSSL, *_tls_ciphers is about TLS 1.2 and older); null: the defaults.</summary>
    public IReadOnlyList<TlsCipherSuite>? Tls13CipherSuites { get; init; }

    /// <summary>client_tls_dheparams = none: no finite-field Diffie-Hellman (DHE) key exchange, only ECDHE (and TLS 1.3).</summary>
    public bool NoDhe { get; init; }

    /// <summary>
    /// The suites to enable, or null for the TLS library's defaults. OpenSSL (hence PgBouncer) sets the TLS 1.2
    /// and the TLS 1.3 suites separately; .NET takes one list for both (CipherSuitesPolicy), so the list is
    /// *_tls_ciphers (else secure TLS 1.2 defaults) plus *_tls13_ciphers (else the TLS 1.3 suites *_tls_ciphers
    /// named, else the TLS 1.3 defaults), without DHE suites under dheparams = none.
    /// </summary>
    public IReadOnlyList<TlsCipherSuite>? EffectiveCipherSuites()
    {
        if (CipherSuites is null && Tls13CipherSuites is null && !NoDhe)
        {
            return null;
        }

        var tls12 = CipherSuites?.Where(s => !TlsValues.IsTls13(s)).ToList() ?? [.. TlsValues.DefaultTls12Suites];
        var tls13 = Tls13CipherSuites?.ToList() ?? CipherSuites?.Where(TlsValues.IsTls13).ToList() ?? [];
        if (tls13.Count == 0 && Tls13CipherSuites is null)
        {
            tls13.AddRange(TlsValues.DefaultTls13Suites);
        }

        if (NoDhe)
        {
            tls12.RemoveAll(s => s.ToString().StartsWith("TLS_DHE_", StringComparison.Ordinal));
        }

        return [.. tls13, .. tls12];
    }

    public bool Enabled => Mode != TlsMode.Disable;

    public bool VerifiesCertificate => Mode is TlsMode.VerifyCa or TlsMode.VerifyFull;
}

/// <summary>Parsers for the TLS values of pgbouncer.ini, limited to what .NET's SslStream can apply.</summary>
public static class TlsValues
{
    public const string ModeAccepted = "disable, allow, prefer, require, verify-ca, verify-full";
    public const string ProtocolsAccepted = "a comma list of tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3, or all, secure, legacy";
    public const string CiphersAccepted =
        "default, secure, fast, normal (the TLS library's secure defaults), or a colon list of IANA cipher suite names such as TLS_AES_128_GCM_SHA256:TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";

    public const string Tls13CiphersAccepted =
        "default, or a colon list of TLS 1.3 suite names: TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256, TLS_AES_128_CCM_SHA256, TLS_AES_128_CCM_8_SHA256";

    /// <summary>OpenSSL's default TLS 1.3 suites, in its order.</summary>
    public static readonly TlsCipherSuite[] DefaultTls13Suites =
    [
        TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256, TlsCipherSuite.TLS_AES_128_GCM_SHA256,
    ];

    /// <summary>TLS 1.2 suites used when only the TLS 1.3 ones are chosen: forward-secret ECDHE with AEAD ciphers only.</summary>
    public static readonly TlsCipherSuite[] DefaultTls12Suites =
    [
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];

    /// <summary>TLS 1.3 suites name no key exchange (RFC 8446 section B.4): TLS_AES_..., TLS_CHACHA20_....</summary>
    public static bool IsTls13(TlsCipherSuite suite) => !suite.ToString().Contains("_WITH_", StringComparison.Ordinal);

    /// <summary>*_tls13_ciphers: "default" (or empty), or a colon list of TLS 1.3 suites; OpenSSL spells them as IANA does.</summary>
    public static bool TryParseTls13Ciphers(string text, out IReadOnlyList<TlsCipherSuite>? suites, out string? error)
    {
        suites = null;
        error = null;
        var trimmed = text.Trim();
        if (trimmed.Length == 0 || trimmed.Equals("default", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        var list = new List<TlsCipherSuite>();
        foreach (var name in trimmed.Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!name.StartsWith("TLS_", StringComparison.Ordinal) || !Enum.TryParse<TlsCipherSuite>(name, ignoreCase: false, out var suite) || !IsTls13(suite))
            {
                error = $"\"{name}\" is not a TLS 1.3 cipher suite";
                return false;
            }

            list.Add(suite);
        }

        suites = list;
        return true;
    }

    public static bool TryParseMode(string text, out TlsMode mode)
    {
        (bool ok, mode) = text.Trim().ToLowerInvariant() switch
        {
            "disable" => (true, TlsMode.Disable),
            "allow" => (true, TlsMode.Allow),
            "prefer" => (true, TlsMode.Prefer),
            "require" => (true, TlsMode.Require),
            "verify-ca" => (true, TlsMode.VerifyCa),
            "verify-full" => (true, TlsMode.VerifyFull),
            _ => (false, TlsMode.Disable),
        };
        return ok;
    }

    /// <summary>PgBouncer's protocol list; "legacy" and "all" include TLS 1.0 and 1.1, which the system's OpenSSL policy may still refuse.</summary>
    public static bool TryParseProtocols(string text, out SslProtocols protocols)
    {
        protocols = SslProtocols.None;
        foreach (var raw in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
#pragma warning disable SYSLIB0039 // TLS 1.0/1.1 are obsolete, but PgBouncer lets an operator ask for them explicitly.
            SslProtocols? one = raw.ToLowerInvariant() switch
            {
                "tlsv1.0" or "tlsv1" => SslProtocols.Tls,
                "tlsv1.1" => SslProtocols.Tls11,
                "tlsv1.2" => SslProtocols.Tls12,
                "tlsv1.3" => SslProtocols.Tls13,
                "secure" => SslProtocols.Tls12 | SslProtocols.Tls13,
                "all" or "legacy" => SslProtocols.Tls | SslProtocols.Tls11 | SslProtocols.Tls12 | SslProtocols.Tls13,
                _ => null,
            };
#pragma warning restore SYSLIB0039
            if (one is null)
            {
                return false;
            }

            protocols |= one.Value;
        }

        return protocols != SslProtocols.None;
    }

    /// <summary>
    /// PgBouncer takes an OpenSSL cipher string; .NET can only be given an explicit list of suites
    /// (CipherSuitesPolicy), so OpenSSL names and expressions (HIGH:!aNULL) are refused rather than
    /// silently approximated. PgBouncer's secure shortcuts keep the library defaults, which are secure.
    /// </summary>
    public static bool TryParseCiphers(string text, out IReadOnlyList<TlsCipherSuite>? suites, out string? error)
    {
        suites = null;
        error = null;
        var trimmed = text.Trim();
        switch (trimmed.ToLowerInvariant())
        {
            case "" or "default" or "secure" or "fast" or "normal":
                return true;
            case "compat" or "legacy" or "insecure" or "all":
                error = $"\"{trimmed}\" asks for legacy or insecure ciphers, which FastPool does not enable";
                return false;
        }

        var list = new List<TlsCipherSuite>();
        foreach (var name in trimmed.Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!name.StartsWith("TLS_", StringComparison.Ordinal) || !Enum.TryParse<TlsCipherSuite>(name, ignoreCase: false, out var suite))
            {
                error = $"\"{name}\" is not an IANA cipher suite name .NET knows (OpenSSL names and expressions cannot be applied)";
                return false;
            }

            list.Add(suite);
        }

        suites = list;
        return true;
    }
}
