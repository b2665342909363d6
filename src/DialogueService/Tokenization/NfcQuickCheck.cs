using System.Globalization;
using System.Text;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// Decides without calling ICU that a text is already in NFC, which most input is: the NFC normalizer then returns
/// it as is. A character is stable when it is NFC on its own, has combining class 0 (it is not a mark, so no
/// reordering) and never composes with the character before it (those are marks too, or Hangul vowel and final
/// jamo, excluded by block). A text made only of stable characters is NFC. Unassigned code points are not stable:
/// a newer Unicode version may make them marks.
/// </summary>
internal static class NfcQuickCheck
{
    /// <summary>Stable BMP characters, computed once from the platform's Unicode data (about 65k single-character checks).</summary>
    private static readonly bool[] StableBmp = BuildBmp();

    /// <summary>Supplementary blocks without decompositions or marks: emoji and pictographs, CJK extensions B–H
    /// (not the compatibility ideographs at U+2F800), mathematical alphanumerics, tags, variation selectors.</summary>
    private static readonly (int First, int Last)[] StableSupplementary =
        [(0x1D400, 0x1D7FF), (0x1F000, 0x1FAFF), (0x20000, 0x2F7FF), (0x30000, 0x323AF), (0xE0000, 0xE007F), (0xE0100, 0xE01EF)];

    private static bool[] BuildBmp()
    {
        var table = new bool[0x10000];
        for (var c = 0; c < 0xFFFE; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF or >= 0x1100 and <= 0x11FF or >= 0xA960 and <= 0xA97F or >= 0xD7B0 and <= 0xD7FF) continue;
            var category = CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (category is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
                or UnicodeCategory.OtherNotAssigned) continue;
            table[c] = c < 0x300 || ((char)c).ToString().IsNormalized(NormalizationForm.FormC);
        }
        return table;
    }

    public static bool IsNfc(ReadOnlySpan<char> s)
    {
        var table = StableBmp;
        for (var i = 0; i < s.Length; i++)
        {
            if (table[s[i]]) continue;
            if (!char.IsHighSurrogate(s[i]) || i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1])) return false;
            var cp = char.ConvertToUtf32(s[i], s[i + 1]);
            if (!IsStableSupplementary(cp)) return false;
            i++;
        }
        return true;
    }

    private static bool IsStableSupplementary(int cp)
    {
        foreach (var (first, last) in StableSupplementary)
            if (cp >= first && cp <= last) return CharUnicodeInfo.GetUnicodeCategory(cp) != UnicodeCategory.OtherNotAssigned;
        return false;
    }
}
