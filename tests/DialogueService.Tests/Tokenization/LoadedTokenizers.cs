using System.Collections.Concurrent;
using ChatServices.DialogueService.Tokenization;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>The real tokenizers, each loaded once per test run (loading Llama 3 or Qwen 3 parses ~10 MB of JSON).</summary>
internal static class LoadedTokenizers
{
    private static readonly ConcurrentDictionary<string, Lazy<Tokenizer>> Cache = new();

    public static Tokenizer Get(string name) =>
        Cache.GetOrAdd(name, n => new Lazy<Tokenizer>(() =>
        {
            var (tokenizer, config) = TokenizerFiles.Get(TestPaths.RepoRoot, n);
            return Tokenizer.Load(tokenizer, config);
        })).Value;

    public static TheoryData<string> Names => new(TokenizerFiles.Names);
}
