using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// The character classes that pre-tokenizer patterns use (<c>\p{L}</c>, <c>\p{N}</c>, <c>\s</c>), looked up per
/// code point (not per UTF-16 unit: a letter outside the BMP is a letter, a lone surrogate is neither letter,
/// number nor space). The BMP is a precomputed table so that the per-character test on the hot path is one load.
/// </summary>
internal static class CharClass
{
    public const byte Letter = 1;
    public const byte Number = 2;
    /// <summary>Unicode White_Space (what <c>\s</c> means in tokenizer.json regexes).</summary>
    public const byte Space = 4;
    /// <summary>ECMAScript <c>\s</c>: White_Space plus U+FEFF, minus U+0085 (the GPT-2 ByteLevel built-in pattern).</summary>
    public const byte JsSpace = 8;

    private static readonly byte[] Bmp = BuildBmp();

    private static byte[] BuildBmp()
    {
        var table = new byte[0x10000];
        for (var c = 0; c < table.Length; c++)
            table[c] = FromCategory(CharUnicodeInfo.GetUnicodeCategory((char)c));
        foreach (var c in "\t\n\v\f\r \u0085\u00A0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200A\u2028\u2029\u202F\u205F\u3000")
            table[c] |= Space | JsSpace;
        table[0x85] &= unchecked((byte)~JsSpace);
        table[0xFEFF] |= JsSpace;
        return table;
    }

    private static byte FromCategory(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => Letter,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => Number,
        _ => 0,
    };

    /// <summary>The class bits of the code point starting at <paramref name="i"/>, and its length in UTF-16 units.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte At(ReadOnlySpan<char> s, int i, out int width)
    {
        var c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            width = 2;
            return FromCategory(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(c, s[i + 1])));
        }
        width = 1;
        return Bmp[c];
    }

    /// <summary>Class bits of one code point (any plane).</summary>
    public static byte Of(Rune r) => r.IsBmp ? Bmp[r.Value] : FromCategory(CharUnicodeInfo.GetUnicodeCategory(r.Value));

    public static bool IsJsWhiteSpace(char c) => (Bmp[c] & JsSpace) != 0;
}
