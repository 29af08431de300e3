using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastPool.Routing.Classification;

/// <summary>
/// The pre-checks in front of the SQL lexers (routing's plain-SELECT check, transaction pooling's session-state
/// check) ask one question of every query text: does any word start like a key word they act on? This answers it
/// sixteen bytes at a time. A candidate is an ASCII letter that starts a word (the byte before is neither a letter
/// nor part of a multi-byte character, PostgreSQL docs 4.1.1), whose letter is among the key words' first letters and
/// whose next letter among their second letters; only candidates reach the caller's exact comparison. Digits, '_' and
/// '$' end no word here, so they only make more candidates, never fewer. Optionally, a pair of letters is a candidate
/// anywhere, word start or not (advisory_lock inside pg_try_advisory_lock). Allocation-free.
/// </summary>
public sealed class KeywordScan
{
    private static readonly Vector128<byte> s_highNibbleBits = Vector128.Create((byte)0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0);

    // Letter sets as nibble tables: lower-case letter 0x6n is in a set when entry n has bit 1, 0x7n when it has bit 2.
    private readonly Vector128<byte> _firsts;
    private readonly Vector128<byte> _seconds;
    private readonly Vector128<byte> _anywhereFirst;
    private readonly Vector128<byte> _anywhereSecond;
    private readonly bool _anywhere;

    /// <param name="firstLetters">Lower-case first letters of the key words.</param>
    /// <param name="secondLetters">Lower-case second letters of the key words.</param>
    /// <param name="anywhere">Empty, or two lower-case letters that are a candidate wherever they stand.</param>
    public KeywordScan(string firstLetters, string secondLetters, string anywhere = "")
    {
        _firsts = Table(firstLetters);
        _seconds = Table(secondLetters);
        _anywhere = anywhere.Length == 2;
        _anywhereFirst = _anywhere ? Table(anywhere[..1]) : default;
        _anywhereSecond = _anywhere ? Table(anywhere[1..]) : default;
    }

    /// <summary>Whether a key word the caller looks for starts at a candidate in <paramref name="text"/> (the byte before it counts as a blank).</summary>
    /// <typeparam name="TMatch">Decides each candidate exactly; a struct, so the call is direct.</typeparam>
    public bool Any<TMatch>(ReadOnlySpan<byte> text)
        where TMatch : struct, IKeywordMatch
    {
        if (text.Length < Vector128<byte>.Count)
        {
            // Padded with zeros (not letters, so no candidates) to one block.
            Span<byte> padded = stackalloc byte[Vector128<byte>.Count];
            padded.Clear();
            text.CopyTo(padded);
            return AnyIn<TMatch>(text, Vector128.Create<byte>(padded), 0, 0, 0xFFFF);
        }

        ref byte start = ref MemoryMarshal.GetReference(text);
        int last = text.Length - Vector128<byte>.Count;
        uint wordBefore = 0;
        int offset = 0;
        for (; offset < last; offset += Vector128<byte>.Count)
        {
            var block = Vector128.LoadUnsafe(ref start, (nuint)offset);
            if (AnyIn<TMatch>(text, block, offset, wordBefore, 0xFFFF))
            {
                return true;
            }

            wordBefore = IsWordByte(text[offset + Vector128<byte>.Count - 1]) ? 1u : 0u;
        }

        // The last block ends at the text's end and overlaps the one before; its positions already looked at are masked.
        uint fresh = 0xFFFFu << (offset - last);
        return AnyIn<TMatch>(text, Vector128.LoadUnsafe(ref start, (nuint)last), last, last > 0 && IsWordByte(text[last - 1]) ? 1u : 0u, fresh);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool AnyIn<TMatch>(ReadOnlySpan<byte> text, Vector128<byte> block, int offset, uint wordBefore, uint fresh)
        where TMatch : struct, IKeywordMatch
    {
        var lower = block | Vector128.Create((byte)0x20);
        uint letters = Vector128.LessThanOrEqual(lower - Vector128.Create((byte)'a'), Vector128.Create((byte)('z' - 'a'))).ExtractMostSignificantBits();
        uint wordBytes = letters | block.ExtractMostSignificantBits();

        // Bit k: position k starts a word. A letter at the block's last position is a candidate whatever follows it
        // (the next block holds its second letter).
        uint starts = letters & ~((wordBytes << 1) | wordBefore);
        uint candidates = starts & In(lower, _firsts) & ((In(lower, _seconds) >> 1) | 0x8000);
        if (_anywhere)
        {
            candidates |= In(lower, _anywhereFirst) & ((In(lower, _anywhereSecond) >> 1) | 0x8000);
        }

        candidates &= fresh;
        while (candidates != 0)
        {
            if (TMatch.Matches(text, offset + BitOperations.TrailingZeroCount(candidates)))
            {
                return true;
            }

            candidates &= candidates - 1;
        }

        return false;
    }

    private static bool IsWordByte(byte b) => b >= 0x80 || (uint)((b | 0x20) - 'a') <= 'z' - 'a';

    /// <summary>Bit k set when byte k of <paramref name="lower"/> (bytes OR 0x20) is in the letter set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint In(Vector128<byte> lower, Vector128<byte> table)
    {
        var low = Vector128.ShuffleNative(table, lower & Vector128.Create((byte)0x0F));
        var high = Vector128.ShuffleNative(s_highNibbleBits, Vector128.ShiftRightLogical(lower, 4));
        return ~Vector128.Equals(low & high, Vector128<byte>.Zero).ExtractMostSignificantBits() & 0xFFFF;
    }

    private static Vector128<byte> Table(string letters)
    {
        Span<byte> table = stackalloc byte[Vector128<byte>.Count];
        table.Clear();
        foreach (char c in letters)
        {
            if (c is < 'a' or > 'z')
            {
                throw new ArgumentException($"'{c}' is not a lower-case ASCII letter", nameof(letters));
            }

            table[c & 0x0F] |= (byte)(c < 'p' ? 1 : 2);
        }

        return Vector128.Create<byte>(table);
    }
}

/// <summary>The exact test of a <see cref="KeywordScan"/> candidate: whether a key word starts at <paramref name="position"/>.</summary>
public interface IKeywordMatch
{
    static abstract bool Matches(ReadOnlySpan<byte> text, int position);
}
