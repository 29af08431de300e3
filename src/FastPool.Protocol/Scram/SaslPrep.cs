using System.Text;

namespace FastPool.Protocol.Scram;

/// <summary>
/// SASLprep (RFC 4013) of a SCRAM password, the way PostgreSQL applies it (PostgreSQL docs 55.3.1: "if the
/// password is not valid UTF-8 or SASLprep fails, the raw bytes are used"): mapping (RFC 3454 B.1 removed,
/// C.1.2 spaces to U+0020), NFKC, then the prohibited tables C.1.2 to C.9. A string that fails is used as it is.
/// Not done: the unassigned-code-point (A.1) and bidirectional checks; and NFKC only where the runtime offers it:
/// FastPool runs with invariant globalization (no ICU), where normalization is unavailable, so the mapped string
/// is used. That matches libpq for every password typed in NFC without compatibility characters (e.g. "é",
/// "ß", CJK), which is nearly all of them; passwords relying on NFKC folding (ligatures, full-width forms) differ.
/// </summary>
public static class SaslPrep
{
    public static string Normalize(string password)
    {
        // ASCII is the common case and SASLprep leaves it unchanged; ASCII control characters make SASLprep
        // fail, and then PostgreSQL uses the raw string, which is again the same string.
        if (Ascii.IsValid(password))
        {
            return password;
        }

        var mapped = new StringBuilder(password.Length);
        foreach (var rune in password.EnumerateRunes())
        {
            if (MapsToNothing(rune.Value))
            {
                continue;
            }

            if (IsNonAsciiSpace(rune.Value))
            {
                mapped.Append(' ');
                continue;
            }

            mapped.Append(rune.ToString());
        }

        string normalized = mapped.ToString();
        try
        {
            normalized = normalized.Normalize(NormalizationForm.FormKC);
        }
        catch (ArgumentException)
        {
            // Invalid UTF-16 (a lone surrogate): SASLprep fails, the raw password is used.
            return password;
        }
        catch (PlatformNotSupportedException)
        {
            // Invariant globalization: no normalization tables; keep the mapped string (see the summary).
        }

        if (normalized.Length == 0)
        {
            return password;
        }

        for (int i = 0; i < normalized.Length; i++)
        {
            if (char.IsSurrogate(normalized[i]) && !(char.IsHighSurrogate(normalized[i]) && i + 1 < normalized.Length && char.IsLowSurrogate(normalized[i + 1])))
            {
                return password;
            }
        }

        foreach (var rune in normalized.EnumerateRunes())
        {
            if (IsProhibited(rune.Value))
            {
                return password;
            }
        }

        return normalized;
    }

    // RFC 3454 B.1 "commonly mapped to nothing".
    private static bool MapsToNothing(int c) =>
        c is 0x00AD or 0x034F or 0x1806 or (>= 0x180B and <= 0x180D) or (>= 0x200B and <= 0x200D) or 0x2060
            or (>= 0xFE00 and <= 0xFE0F) or 0xFEFF;

    // RFC 3454 C.1.2 "non-ASCII space characters".
    private static bool IsNonAsciiSpace(int c) =>
        c is 0x00A0 or 0x1680 or (>= 0x2000 and <= 0x200B) or 0x202F or 0x205F or 0x3000;

    // RFC 4013 section 2.3: C.1.2, C.2.1, C.2.2, C.3, C.4, C.5 (handled above), C.6, C.7, C.8, C.9.
    private static bool IsProhibited(int c) =>
        IsNonAsciiSpace(c)
        || c is <= 0x1F or 0x7F or (>= 0x80 and <= 0x9F)
        || c is 0x06DD or 0x070F or 0x180E or (>= 0x200C and <= 0x200F) or (>= 0x2028 and <= 0x202E) or (>= 0x2060 and <= 0x2063)
            or (>= 0x206A and <= 0x206F) or 0xFEFF or (>= 0xFFF9 and <= 0xFFFD) or (>= 0x1D173 and <= 0x1D17A)
        || c is (>= 0xE000 and <= 0xF8FF) or (>= 0xF0000 and <= 0xFFFFD) or (>= 0x100000 and <= 0x10FFFD)
        || c is (>= 0xFDD0 and <= 0xFDEF) || (c & 0xFFFE) == 0xFFFE
        || c is 0x0340 or 0x0341 or (>= 0x2FF0 and <= 0x2FFB)
        || c is 0xE0001 or (>= 0xE0020 and <= 0xE007F);
}
