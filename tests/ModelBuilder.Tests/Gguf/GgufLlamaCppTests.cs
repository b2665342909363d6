using ChatServices.ModelBuilder.Checkpoints;
using ChatServices.ModelBuilder.Folder;
using ChatServices.ModelBuilder.Gguf;
using ChatServices.ModelBuilder.Tests.Reference;
using LLama;
using LLama.Common;
using LLama.Native;

namespace ChatServices.ModelBuilder.Tests.Gguf;

/// <summary>
/// llama.cpp (LLamaSharp's CPU build) loads the GGUF files the writer produces — metadata, the Llama 2 vocabulary,
/// the permuted query/key rows — and computes what the double-precision reference computes on the same weights.
/// </summary>
public sealed class GgufLlamaCppTests
{
    // Tiny shape with the Llama 2 vocabulary: rows of 64 weights are whole Q4_0/Q8_0 blocks.
    private static readonly RandomModelSpec Spec = new() { Layers = 2, HiddenSize = 64, Heads = 4, KvHeads = 2, IntermediateSize = 128, Seed = 51 };

    [Fact]
    public void Float32_gguf_generates_the_reference_greedy_tokens_in_llama_cpp()
    {
        using var folder = new TempFolder();
        var (config, reference) = Write(folder, GgufType.F32);
        var prompt = TestModels.Tokens(8, config.VocabSize, 5).Select(t => (int)t).ToArray();

        var expected = new List<int>();
        var logits = reference.Forward(prompt.Select(t => (long)t).ToArray())[^1];
        for (var i = 0; i < 16; i++)
        {
            expected.Add(TestModels.ArgMax(logits));
            logits = reference.Forward([expected[^1]])[0];
        }

        Assert.Equal(expected, LlamaCppGreedy(Path.Combine(folder.Path, "model.gguf"), prompt, 16));
    }

    [Theory]
    [InlineData(GgufType.F16, 0.01)]
    [InlineData(GgufType.Q8_0, 0.05)]
    [InlineData(GgufType.Q4_0, 0.4)]
    public void Reduced_precision_gguf_logits_stay_close_to_the_reference(GgufType type, double rmsBound)
    {
        using var folder = new TempFolder();
        var (config, reference) = Write(folder, type);
        var prompt = TestModels.Tokens(12, config.VocabSize, 6).Select(t => (int)t).ToArray();
        var expected = reference.Forward(prompt.Select(t => (long)t).ToArray());

        var actual = LlamaCppLogits(Path.Combine(folder.Path, "model.gguf"), prompt);

        // Per position: rms of the logit difference over the reference logits' standard deviation.
        for (var t = 0; t < prompt.Length; t++)
        {
            var e = expected[t];
            var mean = e.Average();
            var std = Math.Sqrt(e.Sum(x => (x - mean) * (x - mean)) / e.Length);
            var rms = Math.Sqrt(e.Select((x, v) => (x - actual[t][v]) * (x - actual[t][v])).Sum() / e.Length);
            Assert.True(rms / std < rmsBound, $"{type} position {t}: rms Δ/std {rms / std:F4} ≥ {rmsBound}");
        }
    }

    [Fact]
    public void File_size_matches_the_block_formats()
    {
        using var folder = new TempFolder();
        Write(folder, GgufType.Q4_0);
        var (config, _) = ModelFolderBuilder.RandomConfig(Spec, TestModels.Llama2TokenizerDirectory);
        // Q4_0: 18 bytes per 32 weights for every matrix; the rest is metadata (the 32,000-token vocabulary) and norms.
        var matrices = config.ParameterCount - (2 * config.NumLayers + 1) * config.HiddenSize;
        var size = new FileInfo(Path.Combine(folder.Path, "model.gguf")).Length;
        Assert.InRange(size - matrices / 32 * 18, 0, 1_000_000);
    }

    private static (Architectures.DecoderConfig Config, ReferenceDecoder Reference) Write(TempFolder folder, GgufType type)
    {
        var (config, tokenizer) = ModelFolderBuilder.RandomConfig(Spec, TestModels.Llama2TokenizerDirectory);
        var weights = new RandomCheckpoint(config, Spec.Seed);
        GgufWriter.Write(config, weights, tokenizer!, Path.Combine(folder.Path, "model.gguf"), type);
        return (config, new ReferenceDecoder(RandomModelSpec.ToHuggingFaceJson(config), weights.ReadFloat32));
    }

    private static ModelParams Parameters(string path) => new(path) { ContextSize = 128, Threads = 2, BatchThreads = 2, GpuLayerCount = 0 };

    private static List<int> LlamaCppGreedy(string path, int[] prompt, int newTokens)
    {
        var parameters = Parameters(path);
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var batch = new LLamaBatch();
        for (var i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        var tokens = new List<int>();
        for (var n = 0; n < newTokens; n++)
        {
            Assert.Equal(DecodeResult.Ok, context.NativeHandle.Decode(batch));
            tokens.Add(TestModels.ArgMax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1)));
            batch.Clear();
            batch.Add(tokens[^1], prompt.Length + n, LLamaSeqId.Zero, true);
        }
        return tokens;
    }

    private static float[][] LlamaCppLogits(string path, int[] prompt)
    {
        var parameters = Parameters(path);
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var batch = new LLamaBatch();
        for (var i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, true);
        Assert.Equal(DecodeResult.Ok, context.NativeHandle.Decode(batch));
        return Enumerable.Range(0, prompt.Length).Select(i => context.NativeHandle.GetLogitsIth(i).ToArray()).ToArray();
    }
}
