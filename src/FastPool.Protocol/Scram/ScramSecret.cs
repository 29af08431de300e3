using System.Diagnostics.CodeAnalysis;

namespace FastPool.Protocol.Scram;

/// <summary>
/// A stored SCRAM-SHA-256 verifier in PostgreSQL's text form,
/// <c>SCRAM-SHA-256$&lt;iterations&gt;:&lt;salt&gt;$&lt;StoredKey&gt;:&lt;ServerKey&gt;</c> (base64 fields), as found in
/// pg_authid.rolpassword and in PgBouncer's auth_file (PostgreSQL docs 21.5 "Password Authentication").
/// </summary>
public sealed class ScramSecret(int iterations, byte[] salt, byte[] storedKey, byte[] serverKey)
{
    public const string Prefix = "SCRAM-SHA-256$";

    public int Iterations { get; } = iterations;

    public byte[] Salt { get; } = salt;

    public byte[] StoredKey { get; } = storedKey;

    public byte[] ServerKey { get; } = serverKey;

    public static bool LooksLikeSecret(string text) => text.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Parses the text form; false for anything malformed (wrong field count, bad base64, key lengths other than 32).</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out ScramSecret? secret)
    {
        secret = null;
        if (!LooksLikeSecret(text))
        {
            return false;
        }

        var rest = text.AsSpan(Prefix.Length);
        int dollar = rest.IndexOf('$');
        if (dollar < 0)
        {
            return false;
        }

        var iterationsAndSalt = rest[..dollar];
        var keys = rest[(dollar + 1)..];
        int colon1 = iterationsAndSalt.IndexOf(':');
        int colon2 = keys.IndexOf(':');
        if (colon1 < 0 || colon2 < 0
            || !int.TryParse(iterationsAndSalt[..colon1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int iterations)
            || iterations < 1
            || !TryBase64(iterationsAndSalt[(colon1 + 1)..], out var salt) || salt.Length == 0
            || !TryBase64(keys[..colon2], out var storedKey) || storedKey.Length != ScramSha256.KeyLength
            || !TryBase64(keys[(colon2 + 1)..], out var serverKey) || serverKey.Length != ScramSha256.KeyLength)
        {
            return false;
        }

        secret = new ScramSecret(iterations, salt, storedKey, serverKey);
        return true;
    }

    /// <summary>The text form (what an auth_file holds). Not ToString, so a secret never lands in a log line by accident.</summary>
    public string Format() =>
        $"{Prefix}{Iterations}:{Convert.ToBase64String(Salt)}${Convert.ToBase64String(StoredKey)}:{Convert.ToBase64String(ServerKey)}";

    public override string ToString() => "SCRAM-SHA-256 secret (redacted)";

    internal static bool TryBase64(ReadOnlySpan<char> text, [NotNullWhen(true)] out byte[]? bytes)
    {
        var buffer = new byte[((text.Length + 3) / 4) * 3];
        if (Convert.TryFromBase64Chars(text, buffer, out int written))
        {
            bytes = buffer.AsSpan(0, written).ToArray();
            return true;
        }

        bytes = null;
        return false;
    }
}
