using System.Text.Json.Nodes;
using ChatServices.ModelBuilder.Checkpoints;
using ChatServices.ModelBuilder.Folder;
using ChatServices.ModelBuilder.Tests.Reference;

namespace ChatServices.ModelBuilder.Tests;

/// <summary>A model folder built into a temporary directory for one test, deleted afterwards.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "chatservices-modelbuilder-tests", Guid.NewGuid().ToString("N"));

    public string ModelPath => System.IO.Path.Combine(Path, "model.onnx");

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

public static class TestModels
{
    public static readonly string RepoRoot = FindRepoRoot();

    public static string Llama2TokenizerDirectory => System.IO.Path.Combine(RepoRoot, "node_modules", "@lenml", "tokenizer-llama2", "models");

    /// <summary>
    /// Builds a random model; returns the result and a reference decoder factory over the same weights. Without
    /// <paramref name="options"/> the graph returns logits for every position, so that every position is compared.
    /// </summary>
    public static (BuildResult Result, Func<ReferenceDecoder> Reference) BuildRandom(RandomModelSpec spec, string output, BuildOptions? options = null)
    {
        var result = ModelFolderBuilder.FromRandom(spec, output, options ?? new BuildOptions { LastTokenLogitsOnly = false });
        var weights = new RandomCheckpoint(result.Config, spec.Seed);
        return (result, () => new ReferenceDecoder(ReadConfig(output), weights.ReadFloat32));
    }

    public static JsonObject ReadConfig(string folder) =>
        JsonNode.Parse(File.ReadAllText(System.IO.Path.Combine(folder, "config.json")))!.AsObject();

    /// <summary>
    /// Runs <paramref name="prompt"/> through both decoders, then <paramref name="decodeSteps"/> greedy steps (the
    /// reference's choice fed to both); returns the worst <see cref="RelativeError"/> over every logit vector the graph
    /// returns (every prompt position, or the last one for a last-token-logits graph).
    /// </summary>
    public static double WorstErrorAgainstReference(Reference.ReferenceDecoder reference, Runtime.OnnxDecoderRunner runner, long[] prompt, int decodeSteps)
    {
        var expected = reference.Forward(prompt);
        var actual = runner.Step([prompt])[0];
        var worst = 0.0;
        var first = prompt.Length - actual.Length;
        for (var t = 0; t < actual.Length; t++) worst = Math.Max(worst, RelativeError(actual[t], expected[first + t]));
        long next = ArgMax(expected[^1]);
        for (var step = 0; step < decodeSteps; step++)
        {
            var e = reference.Forward([next])[0];
            worst = Math.Max(worst, RelativeError(runner.Step([[next]])[0][0], e));
            next = ArgMax(e);
        }
        return worst;
    }

    /// <summary>max |actual − expected| / max |expected|: the error relative to the logits' scale.</summary>
    public static double RelativeError(float[] actual, double[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, scale = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return diff / scale;
    }

    public static int ArgMax(ReadOnlySpan<double> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    public static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    /// <summary>Deterministic token ids in [3, vocab) (0–2 are the special tokens of random models).</summary>
    public static long[] Tokens(int count, int vocab, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (long)random.Next(3, vocab)).ToArray();
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "ChatServices.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("ChatServices.sln not found above the test binaries");
    }
}
