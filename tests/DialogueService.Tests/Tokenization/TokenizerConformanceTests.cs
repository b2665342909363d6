using ChatServices.DialogueService.Tokenization;
using System.Text;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>
/// Token-for-token conformance with two reference implementations — npm @huggingface/transformers (one node process
/// per tokenizer) and Hugging Face's Rust tokenizers (<see cref="RustReferenceTokenizer"/>) — on the real tokenizer
/// files of GPT-2, Llama 2, Llama 3 and Qwen 3 (and the variants of <see cref="TokenizerFiles.Variants"/>), over the
/// whole corpus.
/// </summary>
public sealed class TokenizerConformanceTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Theory]
    [MemberData(nameof(LoadedTokenizers.NamesAndVariants), MemberType = typeof(LoadedTokenizers))]
    public async Task Encode_and_decode_match_the_reference_implementation_on_the_corpus(string name)
    {
        var texts = TokenizerCorpus.All(TestPaths.RepoRoot);
        var referenceTask = ReferenceTokenizer.EncodeAsync(TestPaths.RepoRoot, name, texts);
        var tokenizer = LoadedTokenizers.Get(name);
        var reference = await referenceTask;
        Assert.Equal(texts.Count, reference.Length);

        var failures = new List<string>();
        for (var i = 0; i < texts.Count; i++)
        {
            var expected = reference[i];
            var ids = tokenizer.Encode(texts[i], addSpecialTokens: true, parseSpecialTokens: true);
            CompareIds(failures, i, texts[i], "encode", expected.Ids, ids);
            CompareIds(failures, i, texts[i], "encode without special tokens", expected.Plain,
                tokenizer.Encode(texts[i], addSpecialTokens: false, parseSpecialTokens: true));
            CompareText(failures, i, texts[i], "decode", expected.Decoded, tokenizer.Decode(ids));
            CompareText(failures, i, texts[i], "decode skipping special tokens", expected.DecodedSkip, tokenizer.Decode(ids, skipSpecialTokens: true));
        }
        Assert.True(failures.Count == 0, $"{name}: {failures.Count} differences over {texts.Count} texts:\n{string.Join("\n", failures.Take(12))}");
    }

    /// <summary>
    /// Against the Rust library. The two references disagree on two of our variant files, and ours follows
    /// @huggingface/transformers there (asserted above); each disagreement is recognized by what causes it, and any
    /// other difference fails:
    /// "gpt2-digits": Rust's Digits pre-tokenizer splits every Unicode number character (char::is_numeric: Nd, Nl, No,
    /// so "１", "٣", "½"), the JavaScript one only ASCII digits. "llama2-metaspace": Rust's Metaspace decoder drops
    /// every "▁" of the first token (so leading spaces vanish), the JavaScript one only the first.
    /// </summary>
    [Theory]
    [MemberData(nameof(LoadedTokenizers.NamesAndVariants), MemberType = typeof(LoadedTokenizers))]
    public void Encode_and_decode_match_Hugging_Face_Rust_tokenizers_on_the_corpus(string name)
    {
        var texts = TokenizerCorpus.All(TestPaths.RepoRoot);
        var rust = RustReferenceTokenizer.Get(TestPaths.RepoRoot, name);
        var tokenizer = LoadedTokenizers.Get(name);

        var failures = new List<string>();
        var known = 0;
        for (var i = 0; i < texts.Count; i++)
        {
            var text = RustReferenceTokenizer.WellFormed(texts[i]);
            var expected = RustReferenceTokenizer.Encode(rust, text);
            var ids = tokenizer.Encode(text, addSpecialTokens: true, parseSpecialTokens: true);
            // The Rust decode skips special tokens and never cleans up tokenization spaces.
            var expectedText = RustReferenceTokenizer.Decode(rust, ids);
            var decoded = tokenizer.Decode(ids, skipSpecialTokens: true, cleanUpTokenizationSpaces: false);
            var sameIds = expected.AsSpan().SequenceEqual(ids);
            if (sameIds && expectedText == decoded) continue;
            if (KnownReferenceDisagreement(name, text, tokenizer, ids, sameIds, expectedText, decoded))
            {
                known++;
                continue;
            }
            CompareIds(failures, i, text, "encode", expected, ids);
            CompareText(failures, i, text, "decode skipping special tokens", expectedText, decoded);
        }
        Assert.True(failures.Count == 0, $"{name}: {failures.Count} differences from HF Rust tokenizers over {texts.Count} texts ({known} known reference disagreements):\n{string.Join("\n", failures.Take(12))}");
        output.WriteLine($"{name}: {texts.Count} texts, {texts.Count - known} equal to HF Rust tokenizers, {known} known reference disagreements");
        if (name is not ("gpt2-digits" or "llama2-metaspace")) Assert.Equal(0, known);
    }

    private static bool KnownReferenceDisagreement(string name, string text, HuggingFaceTokenizer tokenizer, int[] ids, bool sameIds, string rust, string ours) => name switch
    {
        "gpt2-digits" => HasNonAsciiNumber(text),
        "llama2-metaspace" => sameIds && ids.FirstOrDefault(id => !tokenizer.IsSpecial(id), -1) is var first and >= 0
            && tokenizer.IdToToken(first)!.Count(c => c == '\u2581') - 1 is var extra and > 0
            && ours.StartsWith(new string(' ', extra), StringComparison.Ordinal) && ours[extra..] == rust,
        _ => false,
    };

    private static bool HasNonAsciiNumber(string text)
    {
        for (var i = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1)
        {
            if (text[i] < 0x80) continue;
            var category = System.Globalization.CharUnicodeInfo.GetUnicodeCategory(text, i);
            if (category is System.Globalization.UnicodeCategory.DecimalDigitNumber or System.Globalization.UnicodeCategory.LetterNumber
                or System.Globalization.UnicodeCategory.OtherNumber) return true;
        }
        return false;
    }

    private static void CompareIds(List<string> failures, int index, string text, string what, int[] expected, int[] actual)
    {
        var n = Math.Min(expected.Length, actual.Length);
        var first = 0;
        while (first < n && expected[first] == actual[first]) first++;
        if (first == n && expected.Length == actual.Length) return;
        failures.Add($"text #{index} {Show(text)}: {what} differs at token {first}: expected [{Slice(expected, first)}], got [{Slice(actual, first)}]");
    }

    private static void CompareText(List<string> failures, int index, string text, string what, string expected, string actual)
    {
        if (expected == actual) return;
        var first = 0;
        while (first < Math.Min(expected.Length, actual.Length) && expected[first] == actual[first]) first++;
        failures.Add($"text #{index} {Show(text)}: {what} differs at char {first}: expected {Show(expected[first..])}, got {Show(actual[first..])}");
    }

    private static string Slice(int[] ids, int from) =>
        (from > 0 ? "… " : "") + string.Join(", ", ids.Skip(from).Take(8)) + (ids.Length > from + 8 ? " …" : "");

    /// <summary>A short, escaped rendering of a text for failure messages.</summary>
    internal static string Show(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in s.Length > 60 ? s[..60] : s)
            sb.Append(c is >= ' ' and < (char)0x7F ? c.ToString() : $"\\u{(int)c:x4}");
        return sb.Append(s.Length > 60 ? "…\"" : "\"").ToString();
    }
}
