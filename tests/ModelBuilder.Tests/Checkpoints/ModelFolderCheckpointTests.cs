using ChatServices.ModelBuilder.Folder;
using ChatServices.ModelBuilder.Quantization;
using ChatServices.ModelBuilder.Tests.Runtime;

namespace ChatServices.ModelBuilder.Tests.Checkpoints;

/// <summary>A float32 folder the builder wrote is read back as a checkpoint: its weights exactly, under Hugging Face names.</summary>
public sealed class ModelFolderCheckpointTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rebuilding_a_float32_folder_writes_the_same_model_byte_for_byte(bool tied)
    {
        using var original = new TempFolder();
        using var rebuilt = new TempFolder();
        var spec = new RandomModelSpec { TieWordEmbeddings = tied, Seed = 60 };
        ModelFolderBuilder.FromRandom(spec, original.Path, new BuildOptions());

        ModelFolderBuilder.FromCheckpoint(original.Path, rebuilt.Path, new BuildOptions());

        Assert.Equal(File.ReadAllBytes(original.ModelPath), File.ReadAllBytes(rebuilt.ModelPath));
    }

    [Fact]
    public void A_quantized_folder_is_refused_as_a_checkpoint()
    {
        using var quantized = new TempFolder();
        using var output = new TempFolder();
        ModelFolderBuilder.FromRandom(new RandomModelSpec { Seed = 61 }, quantized.Path, new BuildOptions { Int4 = new Int4Options() });

        var error = Assert.Throws<ModelBuilderException>(() => ModelFolderBuilder.FromCheckpoint(quantized.Path, output.Path, new BuildOptions()));
        Assert.Contains("not a float32 build", error.Message);
    }

    /// <summary>
    /// The committed embedded default (last-token logits) and its all-position rebuild greedily continue the chat
    /// prompts of training/README.md's transcripts (Llama 2 template, token ids of the Llama 2 tokenizer) identically.
    /// </summary>
    [Fact]
    public void The_embedded_default_replies_the_same_with_last_token_or_all_position_logits()
    {
        var committed = Path.Combine(TestModels.RepoRoot, "models", "chat-default");
        using var allPositions = new TempFolder();
        ModelFolderBuilder.FromCheckpoint(committed, allPositions.Path, new BuildOptions { LastTokenLogitsOnly = false });
        long[][] prompts =
        [
            [1, 733, 16289, 28793, 22557, 28808, 1602, 460, 368, 28804, 733, 28748, 16289, 28793], // Hello! How are you?
            [1, 733, 16289, 28793, 1824, 349, 574, 1141, 28804, 733, 28748, 16289, 28793],          // What is your name?
            [1, 733, 16289, 28793, 15259, 528, 264, 2838, 28723, 733, 28748, 16289, 28793],         // Tell me a story.
        ];
        foreach (var prompt in prompts)
        {
            var expected = Greedy(allPositions.ModelPath, prompt, 40);
            Assert.Equal(expected, Greedy(Path.Combine(committed, "model.onnx"), prompt, 40));
            Assert.True(expected.Count > 3, "the model replied");
        }
    }

    private static List<int> Greedy(string modelPath, long[] prompt, int newTokens)
    {
        using var runner = new OnnxDecoderRunner(modelPath, 1, shareBuffer: true, maxLength: 128);
        var tokens = new List<int>();
        var logits = runner.Step([prompt])[0][^1];
        for (var i = 0; i < newTokens; i++)
        {
            tokens.Add(TestModels.ArgMax(logits));
            if (tokens[^1] == 2) break;
            logits = runner.Step([[tokens[^1]]])[0][0];
        }
        return tokens;
    }
}
