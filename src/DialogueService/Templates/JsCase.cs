using System.Globalization;
using System.Text;

namespace ChatServices.DialogueService.Templates;

/// <summary>
/// String.prototype.toUpperCase / toLowerCase: Unicode full case mapping (SpecialCasing.txt's unconditional
/// mappings, so "ß" becomes "SS" and "ﬁ" becomes "FI") and the final-sigma rule, which .NET's invariant
/// simple mappings do not apply.
/// </summary>
internal static class JsCase
{
    private static readonly Dictionary<char, string> UpperExpansions = BuildUpperExpansions();

    private static Dictionary<char, string> BuildUpperExpansions()
    {
        var map = new Dictionary<char, string>
        {
            ['\u00DF'] = "SS", ['\u0149'] = "\u02BCN", ['\u01F0'] = "J\u030C", ['\u0390'] = "\u0399\u0308\u0301",
            ['\u03B0'] = "\u03A5\u0308\u0301", ['\u0587'] = "\u0535\u0552", ['\u1E96'] = "H\u0331", ['\u1E97'] = "T\u0308",
            ['\u1E98'] = "W\u030A", ['\u1E99'] = "Y\u030A", ['\u1E9A'] = "A\u02BE", ['\u1F50'] = "\u03A5\u0313",
            ['\u1F52'] = "\u03A5\u0313\u0300", ['\u1F54'] = "\u03A5\u0313\u0301", ['\u1F56'] = "\u03A5\u0313\u0342",
            ['\u1FB6'] = "\u0391\u0342", ['\u1FC6'] = "\u0397\u0342", ['\u1FD2'] = "\u0399\u0308\u0300",
            ['\u1FD3'] = "\u0399\u0308\u0301", ['\u1FD6'] = "\u0399\u0342", ['\u1FD7'] = "\u0399\u0308\u0342",
            ['\u1FE2'] = "\u03A5\u0308\u0300", ['\u1FE3'] = "\u03A5\u0308\u0301", ['\u1FE4'] = "\u03A1\u0313",
            ['\u1FE6'] = "\u03A5\u0342", ['\u1FE7'] = "\u03A5\u0308\u0342", ['\u1FF6'] = "\u03A9\u0342",
            ['\u1FB3'] = "\u0391\u0399", ['\u1FBC'] = "\u0391\u0399", ['\u1FC3'] = "\u0397\u0399", ['\u1FCC'] = "\u0397\u0399",
            ['\u1FF3'] = "\u03A9\u0399", ['\u1FFC'] = "\u03A9\u0399", ['\u1FB2'] = "\u1FBA\u0399", ['\u1FB4'] = "\u0386\u0399",
            ['\u1FC2'] = "\u1FCA\u0399", ['\u1FC4'] = "\u0389\u0399", ['\u1FF2'] = "\u1FFA\u0399", ['\u1FF4'] = "\u038F\u0399",
            ['\u1FB7'] = "\u0391\u0342\u0399", ['\u1FC7'] = "\u0397\u0342\u0399", ['\u1FF7'] = "\u03A9\u0342\u0399",
            ['\uFB00'] = "FF", ['\uFB01'] = "FI", ['\uFB02'] = "FL", ['\uFB03'] = "FFI", ['\uFB04'] = "FFL", ['\uFB05'] = "ST",
            ['\uFB06'] = "ST", ['\uFB13'] = "\u0544\u0546", ['\uFB14'] = "\u0544\u0535", ['\uFB15'] = "\u0544\u053B",
            ['\uFB16'] = "\u054E\u0546", ['\uFB17'] = "\u0544\u053D",
        };
        // Greek letters with iota subscript (ypogegrammeni) or prosgegrammeni: base capital plus capital iota.
        for (var i = 0; i < 8; i++)
        {
            map[(char)(0x1F80 + i)] = $"{(char)(0x1F08 + i)}\u0399";
            map[(char)(0x1F88 + i)] = $"{(char)(0x1F08 + i)}\u0399";
            map[(char)(0x1F90 + i)] = $"{(char)(0x1F28 + i)}\u0399";
            map[(char)(0x1F98 + i)] = $"{(char)(0x1F28 + i)}\u0399";
            map[(char)(0x1FA0 + i)] = $"{(char)(0x1F68 + i)}\u0399";
            map[(char)(0x1FA8 + i)] = $"{(char)(0x1F68 + i)}\u0399";
        }
        return map;
    }

    public static string ToUpper(string s)
    {
        if (IsAscii(s, upper: true)) return s;
        var simple = s.ToUpperInvariant();
        StringBuilder? sb = null;
        for (var i = 0; i < s.Length; i++)
        {
            if (UpperExpansions.TryGetValue(s[i], out var expansion))
            {
                sb ??= new StringBuilder(simple, 0, i, s.Length + 8);
                sb.Append(expansion);
            }
            else
            {
                sb?.Append(simple[i]);
            }
        }
        return sb?.ToString() ?? simple;
    }

    public static string ToLower(string s)
    {
        if (IsAscii(s, upper: false)) return s;
        var simple = s.ToLowerInvariant();
        if (s.IndexOf('\u0130') < 0 && s.IndexOf('\u03A3') < 0) return simple;
        var sb = new StringBuilder(s.Length + 4);
        for (var i = 0; i < s.Length; i++)
        {
            switch (s[i])
            {
                case '\u0130':
                    sb.Append("i\u0307");
                    break;
                case '\u03A3':
                    sb.Append(IsFinalSigma(s, i) ? '\u03C2' : '\u03C3');
                    break;
                default:
                    sb.Append(simple[i]);
                    break;
            }
        }
        return sb.ToString();
    }

    /// <summary>Fast path: pure ASCII text with nothing to change.</summary>
    private static bool IsAscii(string s, bool upper)
    {
        foreach (var c in s)
        {
            if (c >= 0x80) return false;
            if (upper ? c is >= 'a' and <= 'z' : c is >= 'A' and <= 'Z') return false;
        }
        return true;
    }

    // Final_Sigma: preceded by a cased letter and not followed by one, case-ignorable characters skipped.
    private static bool IsFinalSigma(string s, int at)
    {
        var before = at - 1;
        while (before >= 0 && IsCaseIgnorable(s[before])) before--;
        if (before < 0 || !IsCased(s[before])) return false;
        var after = at + 1;
        while (after < s.Length && IsCaseIgnorable(s[after])) after++;
        return after >= s.Length || !IsCased(s[after]);
    }

    private static bool IsCased(char c) => CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.UppercaseLetter
        or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(char c) =>
        c is '\'' or '.' or ':' or '^' or '`' or '\u00B7' or '\u2018' or '\u2019' or '\u2024' or '\uFE52' or '\uFF07' or '\uFF0E'
        || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;
}
