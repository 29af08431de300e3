using System.Globalization;

namespace FastPool.Proxy.Configuration;

/// <summary>A HOST:PORT to listen on: <c>*</c> for every address, an IP (IPv6 in brackets) or a host name.</summary>
public sealed record ListenEndpoint(string Host, int Port)
{
    public static bool TryParse(string text, out ListenEndpoint? endpoint)
    {
        endpoint = null;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            return false;
        }

        var host = text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }
        else if (host.Contains(':', StringComparison.Ordinal))
        {
            // An IPv6 address without brackets: its last group cannot be told from the port.
            return false;
        }

        if (host.Length == 0)
        {
            return false;
        }

        endpoint = new ListenEndpoint(host, port);
        return true;
    }

    public override string ToString() =>
        (Host.Contains(':', StringComparison.Ordinal) ? "[" + Host + "]" : Host) + ":" + Port.ToString(CultureInfo.InvariantCulture);
}
