using System.Net;
using System.Net.Sockets;

namespace FastPool.Proxy.Configuration.Hba;

/// <summary>The connection types of pg_hba.conf (PostgreSQL docs 21.1 "The pg_hba.conf File").</summary>
public enum HbaConnectionType
{
    Local,
    Host,
    HostSsl,
    HostNoSsl,
    HostGssEnc,
    HostNoGssEnc,
}

/// <summary>The methods FastPool can apply; PgBouncer's set (its hba support has no ident, ldap, gss, ...).</summary>
public enum HbaMethod
{
    Trust,
    Reject,
    Password,
    Md5,
    ScramSha256,
    Peer,

    /// <summary>TLS client certificate whose common name is the user name (21.12 "Certificate Authentication"); hostssl only.</summary>
    Cert,
}

/// <summary>A database or user column: keywords and names (names from @file already read in).</summary>
public sealed record HbaNameList(bool All, bool SameUser, IReadOnlySet<string> Names)
{
    public bool MatchesDatabase(string database, string user) =>
        All || (SameUser && string.Equals(database, user, StringComparison.Ordinal)) || Names.Contains(database);

    public bool MatchesUser(string user) => All || Names.Contains(user);
}

/// <summary>An address column: "all", or a network as CIDR or address plus mask.</summary>
public sealed record HbaAddress(IPAddress? Network, int PrefixLength)
{
    public static HbaAddress Any { get; } = new(null, 0);

    public bool Matches(IPAddress address)
    {
        if (Network is null)
        {
            return true;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; rules name them as a.b.c.d.
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != Network.AddressFamily)
        {
            return false;
        }

        var a = address.GetAddressBytes();
        var n = Network.GetAddressBytes();
        int bits = PrefixLength;
        for (int i = 0; i < a.Length && bits > 0; i++, bits -= 8)
        {
            int mask = bits >= 8 ? 0xFF : (0xFF << (8 - bits)) & 0xFF;
            if ((a[i] & mask) != (n[i] & mask))
            {
                return false;
            }
        }

        return true;
    }

    public static int MaxPrefix(AddressFamily family) => family == AddressFamily.InterNetwork ? 32 : 128;
}

/// <summary>One pg_hba.conf line.</summary>
public sealed record HbaRule(int Line, HbaConnectionType Type, HbaNameList Databases, HbaNameList Users, HbaAddress? Address, HbaMethod Method)
{
    /// <param name="address">The client's address; null for a unix-socket client.</param>
    /// <param name="ssl">Whether the client talks TLS.</param>
    public bool Matches(IPAddress? address, bool ssl, string database, string user)
    {
        bool typeMatches = Type switch
        {
            HbaConnectionType.Local => address is null,
            HbaConnectionType.HostSsl => address is not null && ssl,
            HbaConnectionType.HostNoSsl => address is not null && !ssl,

            // FastPool has no GSS encryption, so every TCP client is "nogssenc".
            HbaConnectionType.Host or HbaConnectionType.HostNoGssEnc => address is not null,
            _ => false,
        };
        return typeMatches
            && Databases.MatchesDatabase(database, user)
            && Users.MatchesUser(user)
            && (address is null || Address is null || Address.Matches(address));
    }
}

/// <summary>A parsed auth_hba_file: the rules in file order; the first that matches decides (21.1).</summary>
public sealed record HbaRules(string File, IReadOnlyList<HbaRule> Rules)
{
    public HbaRule? Find(IPAddress? address, bool ssl, string database, string user)
    {
        foreach (var rule in Rules)
        {
            if (rule.Matches(address, ssl, database, user))
            {
                return rule;
            }
        }

        return null;
    }
}
