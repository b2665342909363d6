using ChatServices.InferenceService.Engine;
using ChatServices.ModelBuilder;
using ChatServices.ModelBuilder.Folder;

namespace ChatServices.InferenceService.Tests;

/// <summary>
/// A tiny random GroupQueryAttention model folder written by tools/ModelBuilder into a temporary directory, once per
/// test class (xunit class fixture), and deleted afterwards. 2 layers, hidden 64, 4 heads of 16 over 2 KV heads,
/// vocabulary 512, context 256: real ONNX Runtime inference in milliseconds per step.
/// </summary>
public sealed class TestModel : IDisposable
{
    public TestModel()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "chatservices-inference-tests", Guid.NewGuid().ToString("N"));
        ModelFolderBuilder.FromRandom(Spec, Path, new BuildOptions());
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
    }

    /// <summary>A deterministic prompt of <paramref name="length"/> token ids in [3, vocab).</summary>
    public static int[] Prompt(int length, int salt = 0)
    {
        var tokens = new int[length];
        for (var i = 0; i < length; i++) tokens[i] = 3 + (i * 37 + salt * 101 + i * i * 11) % (Spec.VocabSize - 3);
        return tokens;
    }
}
