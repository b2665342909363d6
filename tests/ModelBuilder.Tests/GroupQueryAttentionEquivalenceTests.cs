using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Folder;
using ChatServices.ModelBuilder.Tests.Runtime;

namespace ChatServices.ModelBuilder.Tests;

/// <summary>
/// The GroupQueryAttention graph computes what the Llama-family definition says: ONNX Runtime's logits for a prefill
/// and the decode steps after it (through the KV cache, both cache modes) match the double-precision
/// <see cref="Reference.ReferenceDecoder"/> to a relative error under 1e-4, for every supported variant.
/// </summary>
public sealed class GroupQueryAttentionEquivalenceTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    public static TheoryData<string> Variants => [.. VariantSpecs.Keys];

    private static readonly Dictionary<string, RandomModelSpec> VariantSpecs = new()
    {
        ["llama"] = new RandomModelSpec(),
        ["llama-tied-embeddings"] = new RandomModelSpec { TieWordEmbeddings = true, Seed = 2 },
        ["llama-multi-head (kv = heads), head_dim 32"] = new RandomModelSpec { Heads = 2, KvHeads = 2, Seed = 3 },
        ["llama-multi-query (1 kv head)"] = new RandomModelSpec { KvHeads = 1, Seed = 4 },
        ["llama3 rope scaling"] = new RandomModelSpec
        {
            Seed = 5, RopeTheta = 500000,
            RopeScaling = new RopeScaling("llama3", 8, OriginalMaxPositionEmbeddings: 32, LowFreqFactor: 1, HighFreqFactor: 4),
        },
        ["linear rope scaling"] = new RandomModelSpec { Seed = 6, RopeScaling = new RopeScaling("linear", 4) },
        ["yarn rope scaling"] = new RandomModelSpec { Seed = 7, RopeTheta = 1000000, RopeScaling = new RopeScaling("yarn", 4, OriginalMaxPositionEmbeddings: 32) },
        ["mistral"] = new RandomModelSpec { Architecture = DecoderArchitecture.Mistral, Seed = 8 },
        ["mistral sliding window 6"] = new RandomModelSpec { Architecture = DecoderArchitecture.Mistral, SlidingWindow = 6, Seed = 9 },
        ["qwen2 (qkv bias)"] = new RandomModelSpec { Architecture = DecoderArchitecture.Qwen2, Seed = 10, RopeTheta = 1000000 },
        ["qwen2 tied embeddings"] = new RandomModelSpec { Architecture = DecoderArchitecture.Qwen2, TieWordEmbeddings = true, Seed = 11 },
        ["head_dim 32 with hidden 64 (q width 128 ≠ hidden)"] = new RandomModelSpec { HeadDim = 32, Seed = 13 },
        ["3 layers, hidden 128, head_dim 64"] = new RandomModelSpec { Layers = 3, HiddenSize = 128, Heads = 2, KvHeads = 1, IntermediateSize = 192, Seed = 12 },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Prefill_and_decode_steps_match_the_reference_with_a_growing_cache(string variant) =>
        output.WriteLine($"worst relative error {AssertMatchesReference(VariantSpecs[variant], shareBuffer: false):E2}");

    [Theory]
    [MemberData(nameof(Variants))]
    public void Prefill_and_decode_steps_match_the_reference_with_a_shared_cache_buffer(string variant) =>
        output.WriteLine($"worst relative error {AssertMatchesReference(VariantSpecs[variant], shareBuffer: true):E2}");

    [Fact]
    public void Right_padded_rows_of_different_lengths_decode_independently_in_one_batch()
    {
        using var folder = new TempFolder();
        var (result, reference) = TestModels.BuildRandom(new RandomModelSpec { Seed = 21 }, folder.Path);
        var vocab = result.Config.VocabSize;
        long[][] prompts = [TestModels.Tokens(11, vocab, 1), TestModels.Tokens(4, vocab, 2), TestModels.Tokens(7, vocab, 3)];
        var references = prompts.Select(_ => reference()).ToArray();

        using var runner = new OnnxDecoderRunner(folder.ModelPath, prompts.Length, shareBuffer: true, maxLength: result.Config.ContextLength);
        var logits = runner.Step(prompts);
        var worst = 0.0;
        var next = new long[prompts.Length][];
        for (var b = 0; b < prompts.Length; b++)
        {
            var expected = references[b].Forward(prompts[b]);
            for (var t = 0; t < prompts[b].Length; t++) worst = Math.Max(worst, TestModels.RelativeError(logits[b][t], expected[t]));
            next[b] = [TestModels.ArgMax(expected[^1])];
        }
        for (var step = 0; step < 5; step++)
        {
            logits = runner.Step(next);
            for (var b = 0; b < prompts.Length; b++)
            {
                var expected = references[b].Forward(next[b])[0];
                worst = Math.Max(worst, TestModels.RelativeError(logits[b][0], expected));
                next[b] = [TestModels.ArgMax(expected)];
            }
        }
        Assert.True(worst < Tolerance, $"worst relative error {worst:E2}");
        Assert.Equal([16, 9, 12], runner.Lengths);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_multi_token_step_after_a_cached_prefix_matches_the_reference(bool shareBuffer)
    {
        // Chunked prefill / continuing a conversation: several new tokens at once on top of an existing cache.
        using var folder = new TempFolder();
        var (result, makeReference) = TestModels.BuildRandom(new RandomModelSpec { Seed = 22 }, folder.Path);
        var reference = makeReference();
        using var runner = new OnnxDecoderRunner(folder.ModelPath, 1, shareBuffer, maxLength: result.Config.ContextLength);
        var worst = 0.0;
        foreach (var chunk in new[] { TestModels.Tokens(5, 512, 1), TestModels.Tokens(4, 512, 2), TestModels.Tokens(1, 512, 3), TestModels.Tokens(7, 512, 4) })
        {
            var expected = reference.Forward(chunk);
            var actual = runner.Step([chunk])[0];
            for (var t = 0; t < chunk.Length; t++) worst = Math.Max(worst, TestModels.RelativeError(actual[t], expected[t]));
        }
        Assert.True(worst < Tolerance, $"worst relative error {worst:E2}");
    }

    [Fact]
    public void External_data_folder_loads_and_matches_the_reference()
    {
        using var folder = new TempFolder();
        var spec = new RandomModelSpec { Seed = 23 };
        var (result, makeReference) = TestModels.BuildRandom(spec, folder.Path, new BuildOptions { ExternalData = ExternalDataMode.Always });
        Assert.True(result.ExternalData);
        var data = new FileInfo(Path.Combine(folder.Path, "model.onnx.data"));
        Assert.True(data.Length > new FileInfo(folder.ModelPath).Length * 10, "the weights live in model.onnx.data");
        var reference = makeReference();
        using var runner = new OnnxDecoderRunner(folder.ModelPath, 1, shareBuffer: true, maxLength: 128);
        var prompt = TestModels.Tokens(6, 512, 9);
        Assert.True(TestModels.WorstErrorAgainstReference(reference, runner, prompt, decodeSteps: 2) < Tolerance);
    }

    [Theory]
    [InlineData(AttentionKind.GroupQuery)]
    [InlineData(AttentionKind.Standard)]
    public void Last_token_logits_graph_returns_each_rows_last_logits(AttentionKind attention)
    {
        using var folder = new TempFolder();
        var options = new BuildOptions { Attention = attention, LastTokenLogitsOnly = true };
        var (result, reference) = TestModels.BuildRandom(new RandomModelSpec { Seed = 24 }, folder.Path, options);
        // Ragged first prefills exist only in the GroupQuery convention (right padding); Standard rows are equal here.
        long[][] prompts = attention == AttentionKind.GroupQuery
            ? [TestModels.Tokens(10, 512, 1), TestModels.Tokens(3, 512, 2)]
            : [TestModels.Tokens(6, 512, 1), TestModels.Tokens(6, 512, 2)];
        var references = prompts.Select(_ => reference()).ToArray();
        using var runner = new OnnxDecoderRunner(folder.ModelPath, 2, shareBuffer: attention == AttentionKind.GroupQuery, maxLength: 128);

        var worst = 0.0;
        var chunks = prompts;
        for (var step = 0; step < 5; step++)
        {
            var logits = runner.Step(chunks);
            var next = new long[2][];
            for (var b = 0; b < 2; b++)
            {
                Assert.Single(logits[b]);
                var expected = references[b].Forward(chunks[b])[^1];
                worst = Math.Max(worst, TestModels.RelativeError(logits[b][0], expected));
                next[b] = [TestModels.ArgMax(expected)];
            }
            chunks = next;
        }
        Assert.True(worst < Tolerance, $"worst relative error {worst:E2}");
    }

    /// <summary>A 9-token prefill, then 6 greedy decode steps; every logit vector is compared.</summary>
    internal static double AssertMatchesReference(RandomModelSpec spec, bool shareBuffer, BuildOptions? options = null, double tolerance = Tolerance)
    {
        using var folder = new TempFolder();
        var (result, makeReference) = TestModels.BuildRandom(spec, folder.Path, options);
        var reference = makeReference();
        using var runner = new OnnxDecoderRunner(folder.ModelPath, batch: 1, shareBuffer, maxLength: result.Config.ContextLength);

        var prompt = TestModels.Tokens(9, result.Config.VocabSize, spec.Seed);
        var worst = TestModels.WorstErrorAgainstReference(reference, runner, prompt, decodeSteps: 6);
        Assert.True(worst < tolerance, $"worst relative error {worst:E2} (tolerance {tolerance:E0})");
        return worst;
    }
}
