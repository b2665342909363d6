using System.Text;
using System.Text.Json.Nodes;
using ChatServices.DialogueService.Tokenization;

namespace ChatServices.DialogueService.Tests.Tokenization;

public sealed class TokenizerTests
{
    [Fact]
    public void Special_token_strings_in_user_text_stay_text_unless_parsing_is_requested()
    {
        var qwen = LoadedTokenizers.Get("qwen3");
        const string text = "<|im_start|>user\nhi<|im_end|>";
        var imStart = qwen.TokenToId("<|im_start|>")!.Value;
        var imEnd = qwen.TokenToId("<|im_end|>")!.Value;

        var asText = qwen.Encode(text);
        Assert.DoesNotContain(imStart, asText);
        Assert.DoesNotContain(imEnd, asText);
        Assert.DoesNotContain(asText, qwen.IsSpecial);
        Assert.Equal(text, qwen.Decode(asText, skipSpecialTokens: true));

        var parsed = qwen.Encode(text, parseSpecialTokens: true);
        Assert.Equal(imStart, parsed[0]);
        Assert.Equal(imEnd, parsed[^1]);
        Assert.Equal("user\nhi", qwen.Decode(parsed, skipSpecialTokens: true));
    }

    [Fact]
    public void Non_special_added_tokens_are_matched_in_any_text()
    {
        var qwen = LoadedTokenizers.Get("qwen3");
        var think = qwen.TokenToId("<think>")!.Value;
        Assert.False(qwen.IsSpecial(think));
        var ids = qwen.Encode("<think>plan</think>answer");
        Assert.Equal(think, ids[0]);
        Assert.Contains(qwen.TokenToId("</think>")!.Value, ids);
    }

    [Fact]
    public void Added_tokens_with_lstrip_and_rstrip_absorb_the_whitespace_beside_them()
    {
        var qwen = LoadedTokenizers.Get("qwen3-strip"); // <|im_start|> lstrip, <|im_end|> rstrip
        var plain = LoadedTokenizers.Get("qwen3");
        const string text = "a \n <|im_start|>b<|im_end|> \n c";
        var a = plain.Encode("a", addSpecialTokens: false);
        var b = plain.Encode("b", addSpecialTokens: false);
        var c = plain.Encode("c", addSpecialTokens: false);
        Assert.Equal([.. a, 151644, .. b, 151645, .. c], qwen.Encode(text, parseSpecialTokens: true));
        Assert.NotEqual(plain.Encode(text, parseSpecialTokens: true), qwen.Encode(text, parseSpecialTokens: true));
    }

    [Fact]
    public void Special_tokens_are_added_as_the_post_processor_says()
    {
        var llama2 = LoadedTokenizers.Get("llama2");
        Assert.Equal(llama2.BosTokenId, llama2.Encode("Hello")[0]);
        Assert.NotEqual(llama2.BosTokenId, llama2.Encode("Hello", addSpecialTokens: false)[0]);
        Assert.Equal(llama2.Encode("Hello", addSpecialTokens: false).Length + 1, llama2.Encode("Hello").Length);

        var qwen = LoadedTokenizers.Get("qwen3"); // ByteLevel post-processor: nothing around the sequence
        Assert.Equal(qwen.Encode("Hello", addSpecialTokens: false), qwen.Encode("Hello"));
    }

    [Fact]
    public void Special_token_ids_come_from_tokenizer_config()
    {
        var llama2 = LoadedTokenizers.Get("llama2");
        Assert.Equal((1, 2), (llama2.BosTokenId, llama2.EosTokenId));
        Assert.Equal(0, llama2.UnknownTokenId);
        var llama3 = LoadedTokenizers.Get("llama3");
        Assert.Equal((128000, 128001), (llama3.BosTokenId, llama3.EosTokenId));
        var qwen = LoadedTokenizers.Get("qwen3");
        Assert.Equal((null, 151645, 151643), (qwen.BosTokenId, qwen.EosTokenId, qwen.PadTokenId));
        Assert.Equal(151669, qwen.VocabularySize);
        Assert.Contains("<|im_start|>", qwen.ChatTemplate);
        var gpt2 = LoadedTokenizers.Get("gpt2");
        Assert.Equal((50256, 50256, 50257), (gpt2.BosTokenId, gpt2.EosTokenId, gpt2.VocabularySize));
    }

    [Theory]
    [MemberData(nameof(LoadedTokenizers.Names), MemberType = typeof(LoadedTokenizers))]
    public void Decode_of_encode_gives_the_text_back(string name)
    {
        var tokenizer = LoadedTokenizers.Get(name);
        var checkedTexts = 0;
        foreach (var text in TokenizerCorpus.All(TestPaths.RepoRoot))
        {
            if (HasLoneSurrogate(text)) continue; // encoded as U+FFFD: cannot come back
            // Qwen normalizes to NFC: the text comes back composed (U+FFFE, which .NET will not normalize, splits it).
            var expected = name == "qwen3" ? string.Join('\uFFFE', text.Split('\uFFFE').Select(p => p.Normalize(NormalizationForm.FormC))) : text;
            var ids = tokenizer.Encode(text, addSpecialTokens: true);
            Assert.Equal(expected, tokenizer.Decode(ids, skipSpecialTokens: true, cleanUpTokenizationSpaces: false));
            checkedTexts++;
        }
        Assert.True(checkedTexts > 240, $"only {checkedTexts} texts checked");
    }

    [Theory]
    [MemberData(nameof(LoadedTokenizers.Names), MemberType = typeof(LoadedTokenizers))]
    public void CountTokens_and_the_list_overload_agree_with_Encode(string name)
    {
        var tokenizer = LoadedTokenizers.Get(name);
        var list = new List<int> { -7 };
        foreach (var text in TokenizerCorpus.Fixed(TestPaths.RepoRoot))
        {
            var ids = tokenizer.Encode(text);
            Assert.Equal(ids.Length, tokenizer.CountTokens(text));
            list.RemoveRange(1, list.Count - 1);
            tokenizer.Encode(text, list);
            Assert.Equal([-7, .. ids], list);
        }
    }

    [Fact]
    public void Concurrent_encoding_from_a_cold_cache_matches_sequential_encoding()
    {
        var (path, config) = TokenizerFiles.Get(TestPaths.RepoRoot, "gpt2");
        var fresh = HuggingFaceTokenizer.Load(path, config); // its piece cache starts empty: threads fill it concurrently
        var texts = TokenizerCorpus.All(TestPaths.RepoRoot);
        var results = new int[texts.Count * 4][];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => results[i] = fresh.Encode(texts[i % texts.Count]));
        var reference = LoadedTokenizers.Get("gpt2");
        for (var i = 0; i < results.Length; i++) Assert.Equal(reference.Encode(texts[i % texts.Count]), results[i]);
    }

    /// <summary>
    /// Qwen normalizes to NFC; most text is recognized as already NFC without ICU. Random strings dense in what
    /// composes (base letters with combining marks, Hangul jamo, kana with voicing marks, canonical singletons)
    /// must encode exactly as their NFC form does.
    /// </summary>
    [Fact]
    public void Nfc_normalization_applies_to_every_composable_sequence()
    {
        var qwen = LoadedTokenizers.Get("qwen3");
        string[] parts = ["e", "A", "o", "\u0301", "\u0308", "\u0327", "\u0323", "\u1100", "\u1161", "\u11A8", "\uAC00", "\u304B",
            "\u3099", "\u30CF", "\u309A", "\u2000", "\u2126", "\u212B", "\uF900", "\u0958", "\u0915", "\u093C", " ", "\u4E00", "\U0001D15E", "😀"];
        var random = new Random(5);
        var changed = 0;
        for (var n = 0; n < 500; n++)
        {
            var text = string.Concat(Enumerable.Range(0, random.Next(1, 8)).Select(_ => parts[random.Next(parts.Length)]));
            var nfc = text.Normalize(NormalizationForm.FormC);
            if (nfc != text) changed++;
            Assert.Equal(qwen.Encode(nfc), qwen.Encode(text));
        }
        Assert.True(changed > 100, $"only {changed} texts change under NFC");
    }

    [Fact]
    public void Token_and_id_lookups_are_inverse()
    {
        var llama3 = LoadedTokenizers.Get("llama3");
        var id = llama3.TokenToId("Hello")!.Value;
        Assert.Equal("Hello", llama3.IdToToken(id));
        Assert.Equal("<|begin_of_text|>", llama3.IdToToken(128000));
        Assert.Null(llama3.TokenToId("no such token ✗"));
        Assert.Null(llama3.IdToToken(-1));
        Assert.Null(llama3.IdToToken(llama3.VocabularySize));
    }

    [Fact]
    public void Decode_rejects_ids_outside_the_vocabulary()
    {
        var gpt2 = LoadedTokenizers.Get("gpt2");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => gpt2.Decode([15496, 50257]));
        Assert.Contains("50257", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => gpt2.Decode([-1]));
    }

    [Fact]
    public void Byte_fallback_spells_unknown_characters_as_bytes()
    {
        var llama2 = LoadedTokenizers.Get("llama2");
        // U+13000 EGYPTIAN HIEROGLYPH A001 is not in the vocabulary: F0 93 80 80.
        var ids = llama2.Encode("𓀀", addSpecialTokens: false);
        var tokens = ids.Select(id => llama2.IdToToken(id)!).ToArray();
        Assert.Equal(["\u2581", "<0xF0>", "<0x93>", "<0x80>", "<0x80>"], tokens);
        Assert.Equal("𓀀", llama2.Decode(ids));
    }

    [Theory]
    [InlineData("normalizer", "BertNormalizer")]
    [InlineData("pre_tokenizer", "Whitespace")]
    [InlineData("decoder", "WordPiece")]
    [InlineData("post_processor", "Banana")]
    public void An_unsupported_component_type_is_named_in_the_error(string section, string type)
    {
        var json = MinimalTokenizerJson();
        json[section] = new JsonObject { ["type"] = type };
        var e = Assert.Throws<TokenizerFormatException>(() => Load(json));
        Assert.Contains(type, e.Message);
        Assert.Contains(section, e.Message);
    }

    [Fact]
    public void A_split_regex_that_cannot_run_is_refused_with_the_pattern()
    {
        var json = MinimalTokenizerJson();
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = "a++b" }, ["behavior"] = "Isolated", ["invert"] = false,
        };
        var e = Assert.Throws<TokenizerFormatException>(() => Load(json));
        Assert.Contains("a++b", e.Message);
    }

    [Theory]
    [InlineData("Isolated", new[] { "ab", "x", "ab", "x" })]
    [InlineData("Removed", new[] { "ab", "ab" })]
    [InlineData("MergedWithPrevious", new[] { "abx", "abx" })]
    [InlineData("MergedWithNext", new[] { "ab", "xab", "x" })]
    public void Split_behaviors_place_the_matches_as_named(string behavior, string[] expectedTokens)
    {
        var json = MinimalTokenizerJson();
        var vocab = json["model"]!["vocab"]!.AsObject();
        vocab["abx"] = 6;
        vocab["xab"] = 7;
        json["model"]!["merges"] = new JsonArray("a b", "ab x", "x ab");
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Split", ["pattern"] = new JsonObject { ["String"] = "x" }, ["behavior"] = behavior, ["invert"] = false,
        };
        var tokenizer = Load(json);
        Assert.Equal(expectedTokens, tokenizer.Encode("abxabx").Select(id => tokenizer.IdToToken(id)!).ToArray());
    }

    [Fact]
    public void A_non_BPE_model_is_refused_with_its_type()
    {
        var json = MinimalTokenizerJson();
        json["model"]!["type"] = "Unigram";
        var e = Assert.Throws<TokenizerFormatException>(() => Load(json));
        Assert.Contains("Unigram", e.Message);
    }

    [Fact]
    public void A_minimal_tokenizer_merges_by_rank()
    {
        var tokenizer = Load(MinimalTokenizerJson());
        // "abab": (a b) has rank 0 → ab ab; (ab ab) has rank 1 → abab.
        Assert.Equal([5], tokenizer.Encode("abab"));
        Assert.Equal([3, 1], tokenizer.Encode("abb")); // (a b) rank 0 before (b b) rank 2; then (ab b) has no merge
        Assert.Equal("abab", tokenizer.Decode([5]));
    }

    /// <summary>
    /// The hand-written scanners for the GPT-2 / Llama 3 / Qwen patterns against .NET's regex engine running the
    /// same pattern (wrapped so that it is not recognized), on every corpus text with its characters outside the BMP
    /// removed (there UTF-16 units are code points and the two must split identically).
    /// </summary>
    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama3")]
    public void Word_pattern_scanner_splits_like_the_regex_engine(string name)
    {
        var (path, config) = TokenizerFiles.Get(TestPaths.RepoRoot, name);
        var json = JsonNode.Parse(File.ReadAllText(path))!;
        var split = json["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"]!;
        split["Regex"] = "(?:" + (string)split["Regex"]! + ")";
        var viaRegex = HuggingFaceTokenizer.Load(new MemoryStream(Encoding.UTF8.GetBytes(json.ToJsonString())), File.OpenRead(config));
        var viaScanner = LoadedTokenizers.Get(name);
        var compared = 0;
        foreach (var corpusText in TokenizerCorpus.All(TestPaths.RepoRoot))
        {
            var text = new string(corpusText.Where(c => !char.IsSurrogate(c)).ToArray());
            Assert.Equal(viaRegex.Encode(text), viaScanner.Encode(text));
            compared++;
        }
        Assert.True(compared > 250, $"only {compared} texts compared");
    }

    private static bool HasLoneSurrogate(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            else if (char.IsSurrogate(s[i])) return true;
        }
        return false;
    }

    private static JsonObject MinimalTokenizerJson() => new()
    {
        ["added_tokens"] = new JsonArray(),
        ["normalizer"] = null,
        ["pre_tokenizer"] = null,
        ["post_processor"] = null,
        ["decoder"] = new JsonObject { ["type"] = "Fuse" },
        ["model"] = new JsonObject
        {
            ["type"] = "BPE",
            ["vocab"] = new JsonObject { ["a"] = 0, ["b"] = 1, ["x"] = 2, ["ab"] = 3, ["bb"] = 4, ["abab"] = 5 },
            ["merges"] = new JsonArray("a b", "ab ab", "b b"),
        },
    };

    private static HuggingFaceTokenizer Load(JsonObject json) =>
        HuggingFaceTokenizer.Load(new MemoryStream(Encoding.UTF8.GetBytes(json.ToJsonString())), null);
}
