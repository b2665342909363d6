using System.Text.RegularExpressions;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>A piece of a pre-tokenized text: a range of <see cref="PreTokenizedText.Text"/>.</summary>
internal readonly record struct TextRange(int Start, int Length)
{
    public int End => Start + Length;
}

/// <summary>The pattern of a Split (or ByteLevel) pre-tokenizer: finds its non-empty matches in a range of text.</summary>
internal abstract class SplitPattern
{
    /// <summary>Appends the matches inside <paramref name="range"/> to <paramref name="matches"/>, left to right.</summary>
    public abstract void FindMatches(string text, TextRange range, List<TextRange> matches);

    /// <summary>
    /// The pattern for a tokenizer.json <c>{"Regex": ...}</c>. The word-splitting regexes of GPT-2, Llama 3 and
    /// Qwen 2/3 run as hand-written scanners (exact, per code point, and several times faster than a regex);
    /// any other regex runs on .NET <see cref="Regex"/>, whose classes test UTF-16 units (a letter outside the BMP
    /// is not <c>\p{L}</c> there).
    /// </summary>
    public static SplitPattern FromRegex(string pattern) => pattern switch
    {
        Gpt2Regex => new WordPattern(WordPattern.Style.Gpt2, CharClass.Space, 0),
        Llama3Regex => new WordPattern(WordPattern.Style.Cl100k, CharClass.Space, 3),
        Qwen2Regex => new WordPattern(WordPattern.Style.Cl100k, CharClass.Space, 1),
        _ => new RegexPattern(pattern),
    };

    /// <summary>The built-in pattern of the ByteLevel pre-tokenizer (<c>use_regex: true</c>), with ECMAScript <c>\s</c>.</summary>
    public static SplitPattern ByteLevelBuiltIn { get; } = new WordPattern(WordPattern.Style.Gpt2, CharClass.JsSpace, 0);

    public const string Gpt2Regex = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    public const string Llama3Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string Qwen2Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
}

/// <summary>A literal <c>{"String": ...}</c> pattern.</summary>
internal sealed class LiteralPattern(string literal) : SplitPattern
{
    public override void FindMatches(string text, TextRange range, List<TextRange> matches)
    {
        if (literal.Length == 0) return;
        var s = text.AsSpan(range.Start, range.Length);
        for (var i = 0; i <= s.Length - literal.Length;)
        {
            var found = s[i..].IndexOf(literal, StringComparison.Ordinal);
            if (found < 0) break;
            matches.Add(new TextRange(range.Start + i + found, literal.Length));
            i += found + literal.Length;
        }
    }
}

internal sealed class RegexPattern : SplitPattern
{
    private readonly Regex _regex;

    public RegexPattern(string pattern)
    {
        try
        {
            _regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new TokenizerFormatException($"Split pattern regex '{pattern}' is not supported: {e.Message}", e);
        }
    }

    public override void FindMatches(string text, TextRange range, List<TextRange> matches)
    {
        foreach (var m in _regex.EnumerateMatches(text.AsSpan(range.Start, range.Length)))
            if (m.Length > 0) matches.Add(new TextRange(range.Start + m.Index, m.Length));
    }
}

/// <summary>
/// The GPT-2 family of word-splitting regexes as a scanner over code points. Every code point is covered by some
/// alternative, so the matches tile the text; each call of <see cref="MatchLength"/> returns the length of the
/// match that the regex (alternatives tried in order, greedy with backtracking) finds at a position.
/// <list type="bullet">
/// <item>Gpt2: <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c></item>
/// <item>Cl100k (Llama 3 with digits ≤ 3, Qwen with 1): <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,n}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c></item>
/// </list>
/// </summary>
internal sealed class WordPattern(WordPattern.Style style, byte spaceClass, int maxDigits) : SplitPattern
{
    public enum Style { Gpt2, Cl100k }

    public override void FindMatches(string text, TextRange range, List<TextRange> matches)
    {
        var s = text.AsSpan(range.Start, range.Length);
        for (var p = 0; p < s.Length;)
        {
            var n = MatchLength(s, p);
            matches.Add(new TextRange(range.Start + p, n));
            p += n;
        }
    }

    private bool IsOther(byte cls) => (cls & (CharClass.Letter | CharClass.Number | spaceClass)) == 0;

    internal int MatchLength(ReadOnlySpan<char> s, int p)
    {
        var c = s[p];
        if (c == '\'' && p + 1 < s.Length)
        {
            var n = Contraction(s[(p + 1)..], ignoreCase: style == Style.Cl100k);
            if (n > 0) return n + 1;
        }

        var cls = CharClass.At(s, p, out var w);
        var next = p + w;
        var nextCls = next < s.Length ? CharClass.At(s, next, out var nextWidth) : (byte)0;
        if (style == Style.Gpt2)
        {
            // " ?X+" for X in letters, numbers, others: an optional leading ASCII space, then a run of one class.
            if (c == ' ' && next < s.Length)
            {
                if ((nextCls & CharClass.Letter) != 0) return w + Run(s, next, CharClass.Letter, int.MaxValue);
                if ((nextCls & CharClass.Number) != 0) return w + Run(s, next, CharClass.Number, int.MaxValue);
                if (IsOther(nextCls)) return w + OtherRun(s, next);
            }
            if ((cls & CharClass.Letter) != 0) return Run(s, p, CharClass.Letter, int.MaxValue);
            if ((cls & CharClass.Number) != 0) return Run(s, p, CharClass.Number, int.MaxValue);
            if (IsOther(cls)) return OtherRun(s, p);
            return Whitespace(s, p, newlines: false);
        }

        // [^\r\n\p{L}\p{N}]?\p{L}+
        if ((cls & CharClass.Letter) != 0) return Run(s, p, CharClass.Letter, int.MaxValue);
        if ((cls & CharClass.Number) == 0 && c != '\r' && c != '\n' && (nextCls & CharClass.Letter) != 0)
            return w + Run(s, next, CharClass.Letter, int.MaxValue);
        // \p{N}{1,n}
        if ((cls & CharClass.Number) != 0) return Run(s, p, CharClass.Number, maxDigits);
        // " ?[^\s\p{L}\p{N}]+[\r\n]*"
        var start = c == ' ' && next < s.Length && IsOther(nextCls) ? next : IsOther(cls) ? p : -1;
        if (start >= 0)
        {
            var end = start + OtherRun(s, start);
            while (end < s.Length && s[end] is '\r' or '\n') end++;
            return end - p;
        }
        return Whitespace(s, p, newlines: true);
    }

    /// <summary>Length of the run of code points of class <paramref name="cls"/> at <paramref name="p"/>, at most <paramref name="maxCount"/> of them.</summary>
    private static int Run(ReadOnlySpan<char> s, int p, byte cls, int maxCount)
    {
        var i = p;
        for (var count = 0; i < s.Length && count < maxCount; count++)
        {
            if ((CharClass.At(s, i, out var w) & cls) == 0) break;
            i += w;
        }
        return i - p;
    }

    private int OtherRun(ReadOnlySpan<char> s, int p)
    {
        var i = p;
        while (i < s.Length && IsOther(CharClass.At(s, i, out var w))) i += w;
        return i - p;
    }

    /// <summary>
    /// The whitespace alternatives at a whitespace character: <c>\s*[\r\n]+</c> (Cl100k only: up to and including the
    /// last line break of the run), then <c>\s+(?!\S)</c> (the run, less its last character when a non-space follows),
    /// then <c>\s+</c>. All White_Space characters are in the BMP, so one character is one UTF-16 unit here.
    /// </summary>
    private int Whitespace(ReadOnlySpan<char> s, int p, bool newlines)
    {
        var e = p;
        var lastNewline = -1;
        while (e < s.Length && (CharClass.At(s, e, out _) & spaceClass) != 0)
        {
            if (s[e] is '\r' or '\n') lastNewline = e;
            e++;
        }
        if (newlines && lastNewline >= 0) return lastNewline + 1 - p;
        if (e == s.Length || e - p == 1) return e - p;
        return e - 1 - p;
    }

    /// <summary>Length of <c>s|t|re|ve|m|ll|d</c> at the start of <paramref name="s"/> (after the apostrophe), or 0.</summary>
    private static int Contraction(ReadOnlySpan<char> s, bool ignoreCase)
    {
        static char Fold(char c, bool ignoreCase) => ignoreCase && c is >= 'A' and <= 'Z' ? (char)(c + 32) : c;
        var a = Fold(s[0], ignoreCase);
        var b = s.Length > 1 ? Fold(s[1], ignoreCase) : '\0';
        return a switch
        {
            's' or 't' or 'm' or 'd' => 1,
            'r' or 'v' when b == 'e' => 2,
            'l' when b == 'l' => 2,
            _ => 0,
        };
    }
}
