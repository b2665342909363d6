using Microsoft.ML.Tokenizers;
using MLTokenizer = Microsoft.ML.Tokenizers.Tokenizer;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>
/// Our tokenizer.json implementation through Microsoft.ML.Tokenizers' abstract <see cref="MLTokenizer"/> API: the
/// same ids as <c>Encode(text)</c> (special tokens added, special-token strings not parsed), offsets that lie over
/// the text in order, truncation that never splits a character, and the same decoding.
/// </summary>
public sealed class HuggingFaceTokenizerAsMLTokenizerTests
{
    [Theory]
    [MemberData(nameof(LoadedTokenizers.Names), MemberType = typeof(LoadedTokenizers))]
    public void The_library_API_encodes_counts_and_decodes_as_the_tokenizer_does(string name)
    {
        var ours = LoadedTokenizers.Get(name);
        MLTokenizer library = ours;
        foreach (var text in TokenizerCorpus.All(TestPaths.RepoRoot))
        {
            var ids = ours.Encode(text);
            Assert.Equal(ids, library.EncodeToIds(text));
            Assert.Equal(ids.Length, library.CountTokens(text));
            if (ids.Length > 0) Assert.Equal(ours.Decode(ids), library.Decode(ids));

            var tokens = library.EncodeToTokens(text, out var normalized);
            Assert.Equal(ids, tokens.Select(t => t.Id));
            var length = (normalized ?? text).Length;
            var previous = 0;
            foreach (var token in tokens)
            {
                Assert.Equal(ours.IdToToken(token.Id), token.Value);
                Assert.InRange(token.Offset.Start.Value, previous, length);
                Assert.InRange(token.Offset.End.Value, token.Offset.Start.Value, length);
                previous = token.Offset.Start.Value;
            }
        }
    }

    [Theory]
    [InlineData("gpt2", "Hello world, tokenizers!")]
    [InlineData("llama3", "Hello world, tokenizers!")]
    [InlineData("qwen3", "naïve café")]
    /// <remarks>Where byte-level tokens split a character, each of them covers the whole character (as in Hugging
    /// Face's offsets), so the exact tiling holds for text whose characters no merge splits.</remarks>
    public void Offsets_cover_the_input_exactly_when_nothing_rewrote_it(string name, string text)
    {
        MLTokenizer library = LoadedTokenizers.Get(name);
        var tokens = library.EncodeToTokens(text, out var normalized);
        Assert.Null(normalized);
        Assert.Equal(text, string.Concat(tokens.Select(t => text[t.Offset])));
    }

    [Fact]
    public void Llama_2_offsets_index_the_normalized_text()
    {
        MLTokenizer library = LoadedTokenizers.Get("llama2");
        var tokens = library.EncodeToTokens("Hello world", out var normalized);
        Assert.Equal("\u2581Hello\u2581world", normalized);
        Assert.Equal(normalized, string.Concat(tokens.Skip(1).Select(t => normalized![t.Offset]))); // after BOS (empty)
    }

    [Theory]
    [MemberData(nameof(LoadedTokenizers.Names), MemberType = typeof(LoadedTokenizers))]
    public void Truncation_by_token_count_keeps_a_prefix_of_the_tokens(string name)
    {
        MLTokenizer library = LoadedTokenizers.Get(name);
        foreach (var text in TokenizerCorpus.Fixed(TestPaths.RepoRoot).Take(40))
        {
            var all = library.EncodeToIds(text);
            var some = library.EncodeToIds(text, 5, out _, out var consumed);
            Assert.True(some.Count <= 5);
            Assert.Equal(all.Take(some.Count), some);
            var index = library.GetIndexByTokenCount(text, 5, out _, out var count);
            Assert.Equal(some.Count, count);
            Assert.Equal(consumed, index);
            var fromEnd = library.GetIndexByTokenCountFromEnd(text, 3, out _, out var tail);
            Assert.True(tail <= 3 && fromEnd >= 0);
        }
    }
}
