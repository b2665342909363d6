using System.Collections.Concurrent;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>
/// The second reference: Hugging Face's Rust <c>tokenizers</c> (the implementation the Python library and the Hub
/// run), through NuGet Tokenizers.DotNet 1.4.1 and its linux-x64 native library. Its <c>Encode</c> adds the
/// post-processor's special tokens and parses special-token strings; its <c>Decode</c> keeps special tokens and does
/// no clean-up of tokenization spaces (a transformers feature, not the Rust library's).
/// </summary>
public static class RustReferenceTokenizer
{
    private static readonly ConcurrentDictionary<string, Lazy<Tokenizers.DotNet.Tokenizer>> Cache = new();

    /// <summary>One native tokenizer per file, for the whole test run (the native side is thread-safe for encoding).</summary>
    public static Tokenizers.DotNet.Tokenizer Get(string repoRoot, string name) =>
        Cache.GetOrAdd(name, n => new Lazy<Tokenizers.DotNet.Tokenizer>(() =>
            new Tokenizers.DotNet.Tokenizer(vocabPath: TokenizerFiles.Get(repoRoot, n).Tokenizer))).Value;

    /// <summary>
    /// The text as a Rust string can hold it: lone surrogates (in the corpus on purpose) become U+FFFD, as any UTF-8
    /// boundary makes them. Both sides are compared on this text; the node reference covers the lone surrogates.
    /// </summary>
    public static string WellFormed(string text)
    {
        if (!HasLoneSurrogate(text)) return text;
        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) i++;
            else if (char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }

    public static bool HasLoneSurrogate(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(text[i])) return true;
        }
        return false;
    }

    public static int[] Encode(Tokenizers.DotNet.Tokenizer tokenizer, string text) =>
        Array.ConvertAll(tokenizer.Encode(text), id => (int)id);

    public static string Decode(Tokenizers.DotNet.Tokenizer tokenizer, int[] ids) =>
        tokenizer.Decode(Array.ConvertAll(ids, id => (uint)id));
}
