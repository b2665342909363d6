using ChatServices.ModelBuilder.Folder;
using ChatServices.ModelBuilder.Quantization;
using ChatServices.ModelBuilder.Tests.Runtime;
using Xunit.Abstractions;

namespace ChatServices.ModelBuilder.Tests;

/// <summary>
/// float16 and 4-bit builds: how far their logits move from the float32 graph / the reference, measured on the same
/// prompt and decode steps, and asserted against the tolerances documented in tools/ModelBuilder/README.md.
/// </summary>
public sealed class PrecisionTests(ITestOutputHelper output)
{
    // Documented in tools/ModelBuilder/README.md. Random Gaussian weights are the hard case for 4-bit rounding (no
    // outliers to protect, every weight perturbed by ~10%), so these bounds are loose by trained-model standards.
    private const double RmsTolerance = 0.3;
    private const double MaxTolerance = 1.2;

    private static readonly RandomModelSpec Spec = new() { Layers = 2, HiddenSize = 128, Heads = 4, KvHeads = 2, IntermediateSize = 256, Seed = 31 };

    [Fact]
    public void Float16_graph_tracks_the_reference_within_the_documented_tolerance()
    {
        var error = MeasureAgainstReference(new BuildOptions { Precision = Precision.Float16 });
        output.WriteLine($"float16 vs reference: worst relative error {error:E2}");
        Assert.True(error < 5e-3, $"float16 relative error {error:E2}");
    }

    [Theory]
    [InlineData(true, 0)]
    [InlineData(false, 0)]
    [InlineData(true, 4)]
    public void Int4_logits_stay_within_the_documented_tolerance_of_the_float_model(bool symmetric, int accuracyLevel)
    {
        using var floatFolder = new TempFolder();
        using var int4Folder = new TempFolder();
        ModelFolderBuilder.FromRandom(Spec, floatFolder.Path, new BuildOptions());
        ModelFolderBuilder.FromRandom(Spec, int4Folder.Path, new BuildOptions { Int4 = new Int4Options(32, symmetric, accuracyLevel) });
        Assert.True(new FileInfo(int4Folder.ModelPath).Length < new FileInfo(floatFolder.ModelPath).Length / 2);

        var (rmsOverStd, maxOverStd, agreement) = Compare(floatFolder.ModelPath, int4Folder.ModelPath);
        output.WriteLine($"int4 symmetric={symmetric} accuracy_level={accuracyLevel}: rms |Δlogit| / std(logits) = {rmsOverStd:F3}, max = {maxOverStd:F3}, top-1 agreement {agreement:P0}");
        Assert.True(rmsOverStd < RmsTolerance, $"rms |Δlogit| / std = {rmsOverStd:F3}");
        Assert.True(maxOverStd < MaxTolerance, $"max |Δlogit| / std = {maxOverStd:F3}");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Int4_graph_computes_exactly_the_reference_on_the_dequantized_weights(bool symmetric)
    {
        // Separates rounding error (the tolerance above) from layout errors: the 4-bit graph must equal the float
        // reference run on the weights as MatMulNBits' specification reads them back from model.onnx.
        using var folder = new TempFolder();
        var result = ModelFolderBuilder.FromRandom(Spec, folder.Path, new BuildOptions { Int4 = new Int4Options(32, symmetric) });
        var random = new ModelBuilder.Checkpoints.RandomCheckpoint(result.Config, Spec.Seed);
        var dequantized = MatMulNBitsReader.DequantizedWeights(folder.ModelPath, result.Config.QueryHiddenSize, result.Config.KvHiddenSize);
        Assert.Equal(2 * 7 + 1, dequantized.Count);
        var reference = new Reference.ReferenceDecoder(TestModels.ReadConfig(folder.Path),
            name => dequantized.TryGetValue(name, out var w) ? w : random.ReadFloat32(name));

        using var runner = new OnnxDecoderRunner(folder.ModelPath, 1, shareBuffer: true, maxLength: 128);
        var prompt = TestModels.Tokens(8, Spec.VocabSize, 4);
        var worst = TestModels.WorstErrorAgainstReference(reference, runner, prompt, decodeSteps: 4);
        output.WriteLine($"int4 (symmetric={symmetric}) vs reference on dequantized weights: {worst:E2}");
        Assert.True(worst < 1e-4, $"relative error {worst:E2}");
    }

    private static double MeasureAgainstReference(BuildOptions options)
    {
        using var folder = new TempFolder();
        var (result, makeReference) = TestModels.BuildRandom(Spec, folder.Path, options);
        var reference = makeReference();
        using var runner = new OnnxDecoderRunner(folder.ModelPath, 1, shareBuffer: true, maxLength: result.Config.ContextLength);
        var prompt = TestModels.Tokens(9, result.Config.VocabSize, 1);
        var worst = TestModels.WorstErrorAgainstReference(reference, runner, prompt, decodeSteps: 6);
        return worst;
    }

    /// <summary>Runs both models on the same tokens (the float model's greedy path); returns rms|Δ|/std, max|Δ|/std and top-1 agreement.</summary>
    private static (double RmsOverStd, double MaxOverStd, double Agreement) Compare(string floatModel, string quantizedModel)
    {
        using var a = new OnnxDecoderRunner(floatModel, 1, shareBuffer: true, maxLength: 128);
        using var b = new OnnxDecoderRunner(quantizedModel, 1, shareBuffer: true, maxLength: 128);
        var prompt = TestModels.Tokens(12, Spec.VocabSize, 2);
        var la = a.Step([prompt])[0];
        var lb = b.Step([prompt])[0];
        double worst = 0, squares = 0, variances = 0;
        int agree = 0, total = 0;
        void Accumulate(float[] x, float[] y)
        {
            var mean = x.Average();
            var std = Math.Sqrt(x.Select(v => (v - mean) * (v - mean)).Average());
            worst = Math.Max(worst, x.Zip(y, (p, q) => Math.Abs(p - q)).Max() / std);
            squares += x.Zip(y, (p, q) => (double)(p - q) * (p - q)).Average();
            variances += std * std;
            agree += TestModels.ArgMax(x) == TestModels.ArgMax(y) ? 1 : 0;
            total++;
        }
        for (var t = 0; t < la.Length; t++) Accumulate(la[t], lb[t]);
        long next = TestModels.ArgMax(la[^1]);
        for (var step = 0; step < 8; step++)
        {
            var x = a.Step([[next]])[0][0];
            var y = b.Step([[next]])[0][0];
            Accumulate(x, y);
            next = TestModels.ArgMax(x);
        }
        return (Math.Sqrt(squares / variances), worst, (double)agree / total);
    }
}
