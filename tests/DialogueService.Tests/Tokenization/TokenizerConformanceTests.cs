using System.Text;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>
/// Token-for-token conformance with the reference implementation (npm @huggingface/transformers) on the real
/// tokenizer files of GPT-2, Llama 2, Llama 3 and Qwen 3, over the whole corpus: one node process per tokenizer.
/// </summary>
public sealed class TokenizerConformanceTests
{
    [Theory]
    [MemberData(nameof(LoadedTokenizers.Names), MemberType = typeof(LoadedTokenizers))]
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
