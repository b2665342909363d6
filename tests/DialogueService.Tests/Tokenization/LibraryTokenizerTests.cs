using ChatServices.DialogueService.Tokenization;
using Microsoft.ML.Tokenizers;
using Xunit.Abstractions;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>
/// Model folders that ship a SentencePiece model or a tiktoken file load through Microsoft.ML.Tokenizers
/// (<see cref="LibraryTokenizer"/>), with real files: a SentencePiece model trained here by Google's sentencepiece
/// (which is also the reference it must match), and the GPT-2 / cl100k_base tiktoken files of the NuGet data packages.
/// </summary>
public sealed class LibraryTokenizerTests(ITestOutputHelper output)
{
    /// <summary>
    /// Microsoft.ML.Tokenizers' SentencePiece BPE is not sentencepiece: on this model it differs on some texts, in runs
    /// of whitespace and in the order of tied merges (21 of 444 when written). The figure is recorded here so that a
    /// change shows; decoding, which the adapter does from the pieces, must agree wherever the ids do.
    /// </summary>
    [Fact]
    public async Task A_SentencePiece_model_folder_loads_through_the_library_and_encodes_most_texts_as_sentencepiece_does()
    {
        var (folder, texts, reference) = await LibraryTokenizerFiles.SentencePieceAsync();
        IChatTokenizer tokenizer = TokenizerLoader.LoadFromFolder(folder);
        Assert.Equal("SentencePiece", Assert.IsType<LibraryTokenizer>(tokenizer).Format);

        var idFailures = new List<string>();
        var decodeFailures = new List<string>();
        for (var i = 0; i < texts.Count; i++)
        {
            var ids = tokenizer.Encode(texts[i], addSpecialTokens: false);
            if (!ids.AsSpan().SequenceEqual(reference[i].Ids))
                idFailures.Add($"text #{i} {TokenizerConformanceTests.Show(texts[i])}");
            if (tokenizer.Decode(reference[i].Ids) != reference[i].Decoded)
                decodeFailures.Add($"text #{i} {TokenizerConformanceTests.Show(texts[i])}: decodes to {TokenizerConformanceTests.Show(tokenizer.Decode(reference[i].Ids))}, sentencepiece {TokenizerConformanceTests.Show(reference[i].Decoded)}");
        }
        output.WriteLine($"SentencePiece (vocabulary {tokenizer.VocabularySize}): ids equal to sentencepiece on {texts.Count - idFailures.Count} of {texts.Count} texts; " +
                         $"decoding sentencepiece's ids equal on {texts.Count - decodeFailures.Count}");
        output.WriteLine(string.Join("\n", idFailures));
        Assert.True(decodeFailures.Count == 0, $"{decodeFailures.Count} decodes differ:\n{string.Join("\n", decodeFailures.Take(10))}");
        Assert.True(idFailures.Count <= 21, $"{idFailures.Count} of {texts.Count} texts encode differently from sentencepiece (21 when recorded):\n{string.Join("\n", idFailures.Take(25))}");
    }

    [Fact]
    public async Task A_SentencePiece_model_adds_BOS_and_never_reads_user_text_as_control_tokens()
    {
        var (folder, _, _) = await LibraryTokenizerFiles.SentencePieceAsync();
        var tokenizer = TokenizerLoader.LoadFromFolder(folder);
        var bos = tokenizer.TokenToId("<s>")!.Value;
        var eos = tokenizer.TokenToId("</s>")!.Value;
        Assert.Equal(eos, tokenizer.EosTokenId);
        Assert.Equal("<s>", tokenizer.BosToken);

        const string text = "<s>[INST] hi </s> there";
        var asUserText = tokenizer.Encode(text, addSpecialTokens: false, parseSpecialTokens: false);
        Assert.DoesNotContain(bos, asUserText);
        Assert.DoesNotContain(eos, asUserText);
        Assert.Equal(text, tokenizer.Decode(asUserText));

        var asTemplate = tokenizer.Encode(text, addSpecialTokens: false, parseSpecialTokens: true);
        Assert.Equal(bos, asTemplate[0]);
        Assert.Contains(eos, asTemplate);
        Assert.Equal("there", tokenizer.Decode(asTemplate[(Array.IndexOf(asTemplate, eos) + 1)..]).Trim());

        Assert.Equal([bos, .. tokenizer.Encode("hi", addSpecialTokens: false)], tokenizer.Encode("hi"));
        // The text after </s> is a section of its own, with its own dummy prefix (as in Hugging Face's legacy Llama
        // tokenizer): " there" comes back as "  there".
        Assert.Equal("[INST] hi   there", tokenizer.Decode(asTemplate, skipSpecialTokens: true));
    }

    [Fact]
    public async Task Streaming_detokenization_of_a_SentencePiece_model_equals_decoding_at_once()
    {
        var (folder, texts, _) = await LibraryTokenizerFiles.SentencePieceAsync();
        AssertStreamingEqualsDecode(TokenizerLoader.LoadFromFolder(folder), texts);
    }

    [Fact]
    public void A_gpt2_tiktoken_folder_encodes_and_decodes_as_the_gpt2_tokenizer_json()
    {
        IChatTokenizer tokenizer = TokenizerLoader.LoadFromFolder(LibraryTokenizerFiles.TiktokenFolder("gpt2"));
        Assert.Equal("tiktoken", Assert.IsType<LibraryTokenizer>(tokenizer).Format);
        var gpt2 = LoadedTokenizers.Get("gpt2");
        var texts = LibraryTokenizerFiles.WellFormedCorpus();
        var failures = new List<string>();
        for (var i = 0; i < texts.Count; i++)
        {
            var expected = gpt2.Encode(texts[i], addSpecialTokens: false, parseSpecialTokens: true);
            var ids = tokenizer.Encode(texts[i], addSpecialTokens: false, parseSpecialTokens: true);
            if (!ids.AsSpan().SequenceEqual(expected))
                failures.Add($"text #{i} {TokenizerConformanceTests.Show(texts[i])}: [{string.Join(", ", ids.Take(12))}] vs [{string.Join(", ", expected.Take(12))}]");
            else if (tokenizer.Decode(ids) != gpt2.Decode(ids, cleanUpTokenizationSpaces: false))
                failures.Add($"text #{i} {TokenizerConformanceTests.Show(texts[i])}: decodes differently");
        }
        output.WriteLine($"gpt2.tiktoken: {texts.Count - failures.Count} of {texts.Count} texts equal to gpt2 tokenizer.json");
        Assert.True(failures.Count == 0, $"{failures.Count} of {texts.Count} texts differ:\n{string.Join("\n", failures.Take(10))}");
        Assert.Equal(gpt2.VocabularySize, tokenizer.VocabularySize);
        Assert.Equal(50256, tokenizer.EosTokenId);
    }

    [Fact]
    public void A_cl100k_base_tiktoken_folder_encodes_as_the_library_own_cl100k_tokenizer_and_keeps_user_text_plain()
    {
        var tokenizer = TokenizerLoader.LoadFromFolder(LibraryTokenizerFiles.TiktokenFolder("cl100k_base"));
        var library = TiktokenTokenizer.CreateForEncoding("cl100k_base");
        var texts = LibraryTokenizerFiles.WellFormedCorpus();
        var differing = texts.Where(t => !library.EncodeToIds(t).SequenceEqual(tokenizer.Encode(t, addSpecialTokens: false, parseSpecialTokens: true))).ToList();
        Assert.True(differing.Count == 0, $"{differing.Count} texts differ, first {TokenizerConformanceTests.Show(differing.FirstOrDefault() ?? "")}");

        var endOfText = tokenizer.TokenToId("<|endoftext|>")!.Value;
        Assert.Equal(100257, endOfText);
        Assert.DoesNotContain(endOfText, tokenizer.Encode("a <|endoftext|> b", addSpecialTokens: false, parseSpecialTokens: false));
        Assert.Contains(endOfText, tokenizer.Encode("a <|endoftext|> b", addSpecialTokens: false, parseSpecialTokens: true));
        AssertStreamingEqualsDecode(tokenizer, texts.Take(120).ToList());
    }

    [Fact]
    public void A_folder_without_a_tokenizer_the_loader_serves_is_refused_saying_what_is_missing()
    {
        var empty = Directory.CreateTempSubdirectory("no-tokenizer-").FullName;
        var missing = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.LoadFromFolder(empty));
        Assert.Contains("tokenizer.json", missing.Message);
        Assert.Contains("tokenizer.model", missing.Message);

        File.Copy(Path.Combine(LibraryTokenizerFiles.TiktokenFolder("gpt2"), "gpt2.tiktoken"), Path.Combine(empty, "qwen.tiktoken"));
        var unknown = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.LoadFromFolder(empty));
        Assert.Contains("pre-tokenization pattern is not known", unknown.Message);
        Assert.Contains("cl100k_base", unknown.Message);
    }

    private static void AssertStreamingEqualsDecode(IChatTokenizer tokenizer, IReadOnlyList<string> texts)
    {
        foreach (var text in texts)
        {
            var ids = tokenizer.Encode(text, addSpecialTokens: true, parseSpecialTokens: true);
            var detokenizer = tokenizer.CreateStreamingDetokenizer(skipSpecialTokens: true);
            var streamed = string.Concat(ids.Select(detokenizer.Push)) + detokenizer.Flush();
            Assert.Equal(tokenizer.Decode(ids, skipSpecialTokens: true, cleanUpTokenizationSpaces: false), streamed);
        }
    }
}
