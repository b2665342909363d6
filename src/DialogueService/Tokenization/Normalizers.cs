using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>Rewrites a section of input text before pre-tokenization (tokenizer.json <c>normalizer</c>).</summary>
internal abstract class Normalizer
{
    /// <summary>The normalized text; the same instance when nothing changes.</summary>
    public abstract string Normalize(string text);

    public static Normalizer? FromJson(JsonElement e)
    {
        if (e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined) return null;
        return e.Type() switch
        {
            "Sequence" => new SequenceNormalizer(e.Array("normalizers").Select(FromJson).OfType<Normalizer>().ToArray()),
            "NFC" => new UnicodeNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeNormalizer(NormalizationForm.FormKD),
            "Prepend" => new PrependNormalizer(e.String("prepend") ?? ""),
            "Replace" => new ReplaceNormalizer(e),
            "Lowercase" => new LowercaseNormalizer(),
            "Strip" => new StripNormalizer(e.Bool("strip_left", true), e.Bool("strip_right", true)),
            var t => throw TokenizerFormatException.Unsupported("normalizer", t),
        };
    }
}

internal sealed class SequenceNormalizer(Normalizer[] steps) : Normalizer
{
    public override string Normalize(string text)
    {
        foreach (var step in steps) text = step.Normalize(text);
        return text;
    }
}

/// <summary>
/// Unicode normalization. .NET refuses strings with lone surrogates or U+FFFE, which ECMAScript's <c>normalize</c>
/// passes through unchanged (neither composes with anything): the runs between them are normalized separately.
/// </summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : Normalizer
{
    public override string Normalize(string text)
    {
        if (form == NormalizationForm.FormC && NfcQuickCheck.IsNfc(text)) return text;
        if (!HasUnnormalizable(text)) return text.IsNormalized(form) ? text : text.Normalize(form);
        var sb = new StringBuilder(text.Length);
        var runStart = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (!IsUnnormalizable(text, i))
            {
                if (char.IsHighSurrogate(text[i])) i++;
                continue;
            }
            sb.Append(text[runStart..i].Normalize(form)).Append(text[i]);
            runStart = i + 1;
        }
        return sb.Append(text[runStart..].Normalize(form)).ToString();
    }

    private static bool HasUnnormalizable(string s)
    {
        if (s.Contains('\uFFFE')) return true;
        for (var i = s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF'); i >= 0 && i < s.Length; i++)
        {
            if (IsUnnormalizable(s, i)) return true;
            if (char.IsHighSurrogate(s[i])) i++;
        }
        return false;
    }

    private static bool IsUnnormalizable(string s, int i) =>
        s[i] == '\uFFFE' || char.IsLowSurrogate(s[i]) || (char.IsHighSurrogate(s[i]) && (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1])));
}

internal sealed class PrependNormalizer(string prefix) : Normalizer
{
    public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

internal sealed class ReplaceNormalizer(JsonElement e) : Normalizer
{
    private readonly ReplacePattern _replace = new(e, "Replace normalizer");

    public override string Normalize(string text) => _replace.Apply(text);
}

/// <summary>The <c>{"pattern": {"String" | "Regex": ...}, "content": ...}</c> of Replace normalizers and decoders.</summary>
internal sealed class ReplacePattern
{
    private readonly string? _literal;
    private readonly Regex? _regex;
    private readonly string _content;

    public ReplacePattern(JsonElement e, string owner)
    {
        _content = e.String("content") ?? "";
        if (!e.Has("pattern", out var pattern)) throw new TokenizerFormatException($"{owner} without a pattern.");
        _literal = pattern.String("String");
        if (_literal is null)
            _regex = pattern.String("Regex") is { } r ? new Regex(r, RegexOptions.CultureInvariant | RegexOptions.Multiline)
                : throw new TokenizerFormatException($"{owner} pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}.");
    }

    public string Apply(string text) =>
        _literal is not null ? (_literal.Length == 0 ? text : text.Replace(_literal, _content, StringComparison.Ordinal))
            : _regex!.Replace(text, _content.Replace("$", "$$"));
}

internal sealed class LowercaseNormalizer : Normalizer
{
    public override string Normalize(string text) => text.ToLowerInvariant();
}

internal sealed class StripNormalizer(bool left, bool right) : Normalizer
{
    public override string Normalize(string text)
    {
        var s = text.AsSpan();
        var start = 0;
        var end = s.Length;
        if (left) while (start < end && CharClass.IsJsWhiteSpace(s[start])) start++;
        if (right) while (end > start && CharClass.IsJsWhiteSpace(s[end - 1])) end--;
        return start == 0 && end == s.Length ? text : text[start..end];
    }
}
