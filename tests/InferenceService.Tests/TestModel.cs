using ChatServices.InferenceService.Engine;
using ChatServices.ModelBuilder;
using ChatServices.ModelBuilder.Folder;

namespace ChatServices.InferenceService.Tests;

/// <summary>
/// A tiny random GroupQueryAttention model folder written by tools/ModelBuilder into a temporary directory, once per
/// test class (xunit class fixture), and deleted afterwards. 2 layers, hidden 64, 4 heads of 16 over 2 KV heads,
/// vocabulary 512, context 256: real ONNX Runtime inference in milliseconds per step. Its logits are each row's last
/// token only (ModelBuilder's default).
/// </summary>
public class TestModel : IDisposable
{
    public TestModel() : this(Spec) { }

    protected TestModel(RandomModelSpec spec, AttentionKind attention = AttentionKind.GroupQuery, bool lastTokenLogits = true)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "chatservices-inference-tests", Guid.NewGuid().ToString("N"));
        ModelFolderBuilder.FromRandom(spec, Path, new BuildOptions { Attention = attention, LastTokenLogitsOnly = lastTokenLogits });
    }

    public static RandomModelSpec Spec { get; } = new() { ContextLength = 256, Seed = 7 };

    public string Path { get; }

    public InferenceEngine Start(Action<InferenceOptions>? configure = null)
    {
        var options = new InferenceOptions
        {
            ModelPath = Path,
            KvCacheBudgetMiB = 4,
            MaxBatchSize = 8,
            PrefillChunkTokens = 32,
            StepTokenBudget = 64,
            IntraOpThreads = 1,
        };
        configure?.Invoke(options);
        return InferenceEngine.Start(options);
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }

    /// <summary>A deterministic prompt of <paramref name="length"/> token ids in [3, vocab).</summary>
    public static int[] Prompt(int length, int salt = 0)
    {
        var tokens = new int[length];
        for (var i = 0; i < length; i++) tokens[i] = 3 + (i * 37 + salt * 101 + i * i * 11) % (Spec.VocabSize - 3);
        return tokens;
    }
}

/// <summary>
/// A larger random model (4 layers, hidden 256, vocabulary 512 as <see cref="TestModel"/>, context 2048): with its
/// prompt fed one token per step, a request runs for a thousand steps or more, so it is still in flight when a test
/// cancels it, even on a fast idle machine.
/// </summary>
public sealed class SlowerTestModel() : TestModel(new RandomModelSpec
{
    Layers = 4, HiddenSize = 256, Heads = 4, KvHeads = 2, IntermediateSize = 1024, ContextLength = 2048, Seed = 8,
});

/// <summary>
/// The same weights as <see cref="TestModel"/> (same spec and seed) in Hugging Face Optimum's convention: plain ONNX
/// attention with a <c>position_ids</c> input and present = past ‖ new.
/// </summary>
public sealed class OptimumTestModel() : TestModel(Spec, AttentionKind.Standard);

/// <summary>The same weights as <see cref="TestModel"/> with logits for every position ([batch, sequence, vocab]).</summary>
public sealed class AllPositionLogitsTestModel() : TestModel(Spec, lastTokenLogits: false);

/// <summary>The Optimum-convention model (<see cref="OptimumTestModel"/>) with logits for every position.</summary>
public sealed class OptimumAllPositionLogitsTestModel() : TestModel(Spec, AttentionKind.Standard, lastTokenLogits: false);
