using System.Text;
using ChatServices.DialogueService.Tokenization;

namespace ChatServices.DialogueService.Tests.Tokenization;

public sealed class StreamingDetokenizerTests
{
    /// <summary>
    /// Every corpus text, streamed one token at a time: the chunks concatenate to the full decode, and no chunk
    /// splits a character (no U+FFFD that the full text lacks, no surrogate pair cut between chunks).
    /// </summary>
    [Theory]
    [MemberData(nameof(LoadedTokenizers.Names), MemberType = typeof(LoadedTokenizers))]
    public void Streamed_chunks_concatenate_to_the_full_decode_without_broken_characters(string name)
    {
        var tokenizer = LoadedTokenizers.Get(name);
        foreach (var text in TokenizerCorpus.All(TestPaths.RepoRoot))
        {
            var ids = tokenizer.Encode(text, addSpecialTokens: true, parseSpecialTokens: true);
            var expected = ids.Length == 0 ? "" : tokenizer.Decode(ids, skipSpecialTokens: true, cleanUpTokenizationSpaces: false);
            var chunks = Stream(tokenizer, ids);
            Assert.Equal(expected, string.Concat(chunks));
            foreach (var chunk in chunks)
            {
                Assert.False(chunk.Length > 0 && char.IsHighSurrogate(chunk[^1]), $"chunk ends inside a surrogate pair: {TokenizerConformanceTests.Show(text)}");
                Assert.False(chunk.Length > 0 && char.IsLowSurrogate(chunk[0]) && !expected.Contains(chunk), "chunk starts inside a surrogate pair");
            }
            Assert.Equal(expected.Count(c => c == '\uFFFD'), chunks.Sum(c => c.Count(ch => ch == '\uFFFD')));
        }
    }

    [Fact]
    public void A_character_split_across_byte_level_tokens_is_held_until_complete()
    {
        var gpt2 = LoadedTokenizers.Get("gpt2");
        // One token per UTF-8 byte: the byte alphabet's single-character tokens.
        var bytes = Encoding.UTF8.GetBytes("a😀中é");
        var ids = bytes.Select(b => gpt2.TokenToId(ByteToken(b))!.Value).ToArray();
        var detokenizer = gpt2.CreateStreamingDetokenizer();
        var outputs = ids.Select(detokenizer.Push).ToArray();
        // a | F0 9F 98 80 | E4 B8 AD | C3 A9
        Assert.Equal(["a", "", "", "", "😀", "", "", "中", "", "é"], outputs);
        Assert.Equal("", detokenizer.Flush());
    }

    [Fact]
    public void A_character_split_across_byte_fallback_tokens_is_held_until_complete()
    {
        var llama2 = LoadedTokenizers.Get("llama2");
        var ids = llama2.Encode("𓀀!", addSpecialTokens: false); // ▁ <0xF0> <0x93> <0x80> <0x80> !
        var detokenizer = llama2.CreateStreamingDetokenizer();
        var outputs = ids.Select(detokenizer.Push).ToArray();
        Assert.Equal(["", "", "", "", "𓀀", "!"], outputs);
    }

    [Fact]
    public void Flush_returns_an_incomplete_character_as_a_replacement_character()
    {
        var gpt2 = LoadedTokenizers.Get("gpt2");
        var detokenizer = gpt2.CreateStreamingDetokenizer();
        Assert.Equal("ok", detokenizer.Push(gpt2.TokenToId("ok")!.Value));
        Assert.Equal("", detokenizer.Push(gpt2.TokenToId(ByteToken(0xF0))!.Value));
        Assert.Equal("", detokenizer.Push(gpt2.TokenToId(ByteToken(0x9F))!.Value));
        Assert.Equal("\uFFFD", detokenizer.Flush());
    }

    [Fact]
    public void An_invalid_byte_sequence_does_not_stall_the_stream()
    {
        var gpt2 = LoadedTokenizers.Get("gpt2");
        var detokenizer = gpt2.CreateStreamingDetokenizer();
        Assert.Equal("", detokenizer.Push(gpt2.TokenToId(ByteToken(0xE4))!.Value)); // lead byte, then no continuation
        Assert.Equal("\uFFFDok", detokenizer.Push(gpt2.TokenToId("ok")!.Value));
    }

    [Fact]
    public void Special_tokens_are_skipped_or_kept_as_asked()
    {
        var qwen = LoadedTokenizers.Get("qwen3");
        var ids = qwen.Encode("hi<|im_end|>", parseSpecialTokens: true);
        Assert.Equal("hi", string.Concat(Stream(qwen, ids)));
        var keeping = qwen.CreateStreamingDetokenizer(skipSpecialTokens: false);
        Assert.Equal("hi<|im_end|>", string.Concat(ids.Select(keeping.Push)) + keeping.Flush());
    }

    [Fact]
    public void The_leading_space_strip_applies_only_to_the_first_token()
    {
        // Llama 2's decoder strips one leading space of the text: the first word streams as "Hello", later words
        // keep their spaces, including a token that is only a space.
        var llama2 = LoadedTokenizers.Get("llama2");
        var ids = llama2.Encode("Hello world  again", addSpecialTokens: true);
        var chunks = Stream(llama2, ids).Where(c => c.Length > 0).ToArray();
        Assert.Equal("Hello", chunks[0]);
        Assert.Equal(" world", chunks[1]);
        Assert.Equal("Hello world  again", string.Concat(chunks));
    }

    [Fact]
    public void Pushing_ids_in_groups_gives_the_same_text_as_one_by_one()
    {
        var llama3 = LoadedTokenizers.Get("llama3");
        var ids = llama3.Encode("Grouped 👨‍👩‍👧‍👦 tokens, 中文 and ✈️ — streamed three at a time.");
        var grouped = llama3.CreateStreamingDetokenizer();
        var text = new StringBuilder();
        for (var i = 0; i < ids.Length; i += 3) text.Append(grouped.Push(ids.AsSpan(i, Math.Min(3, ids.Length - i))));
        text.Append(grouped.Flush());
        Assert.Equal(string.Concat(Stream(llama3, ids)), text.ToString());
        Assert.Equal(llama3.Decode(ids, skipSpecialTokens: true, cleanUpTokenizationSpaces: false), text.ToString());
    }

    [Fact]
    public void Unknown_ids_are_rejected()
    {
        var gpt2 = LoadedTokenizers.Get("gpt2");
        Assert.Throws<ArgumentOutOfRangeException>(() => gpt2.CreateStreamingDetokenizer().Push(gpt2.VocabularySize));
    }

    private static List<string> Stream(HuggingFaceTokenizer tokenizer, int[] ids)
    {
        var detokenizer = tokenizer.CreateStreamingDetokenizer();
        var chunks = ids.Select(detokenizer.Push).ToList();
        chunks.Add(detokenizer.Flush());
        return chunks;
    }

    private static string ByteToken(byte b)
    {
        // GPT-2's byte alphabet: printable Latin-1 bytes are themselves, the others map from U+0100 upwards.
        var next = 256;
        for (var x = 0; x < 256; x++)
        {
            var printable = x is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            var c = printable ? (char)x : (char)next++;
            if (x == b) return c.ToString();
        }
        throw new ArgumentOutOfRangeException(nameof(b));
    }
}
