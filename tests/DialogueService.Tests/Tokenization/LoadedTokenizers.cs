using System.Collections.Concurrent;
using ChatServices.DialogueService.Tokenization;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>The real tokenizers, each loaded once per test run (loading Llama 3 or Qwen 3 parses ~10 MB of JSON).</summary>
internal static class LoadedTokenizers
{
    private static readonly ConcurrentDictionary<string, Lazy<HuggingFaceTokenizer>> Cache = new();

    public static HuggingFaceTokenizer Get(string name) =>
        Cache.GetOrAdd(name, n => new Lazy<HuggingFaceTokenizer>(() =>
        {
            var (tokenizer, config) = TokenizerFiles.Get(TestPaths.RepoRoot, n);
            return HuggingFaceTokenizer.Load(tokenizer, config);
        })).Value;

    public static TheoryData<string> Names => new(TokenizerFiles.Names);

    public static TheoryData<string> NamesAndVariants => new([.. TokenizerFiles.Names, .. TokenizerFiles.Variants]);
}
