using System.Globalization;
using System.Text;
using ChatServices.InferenceService.Engine;
using ChatServices.ModelBuilder;
using ChatServices.ModelBuilder.Folder;
using ChatServices.ModelBuilder.Quantization;

namespace ChatServices.InferenceBench;

/// <summary>One build of the benchmark model: float32, or MatMulNBits with given settings.</summary>
public sealed record WeightVariant(string Name, Int4Options? Quantization)
{
    public string Folder(string root) => Path.Combine(root, Name);
}

/// <summary>What one variant measured: speed (best of the repetitions) and accuracy against float32.</summary>
public sealed record VariantResult(WeightVariant Variant, long Bytes, double DecodeTokensPerSecond, double Streams16TokensPerSecond,
    double PrefillTokensPerSecond, AccuracyResult? Accuracy);

/// <summary>
/// MatMulNBits settings on ONNX Runtime's CPU provider, measured through the engine on one random checkpoint:
/// accuracy level, block size, symmetric or asymmetric, 4 or 8 bits. Speed: single-stream decode, 16 concurrent
/// streams, a 256-token prefill; accuracy: teacher-forced log-probabilities against the float32 build of the same
/// weights. Variants alternate within each repetition (the machine is shared); each keeps its best repetition.
/// </summary>
public static class QuantizationBench
{
    public const int Threads = 2;

    public static readonly WeightVariant[] Variants =
    [
        new("f32", null),
        new("q4-b32-a0", new Int4Options(32, true, 0)),
        new("q4-b32-a1", new Int4Options(32, true, 1)),
        new("q4-b32-a2", new Int4Options(32, true, 2)),
        new("q4-b32-a4", new Int4Options(32, true, 4)),
        new("q4-b64-a4", new Int4Options(64, true, 4)),
        new("q4-b128-a0", new Int4Options(128, true, 0)),
        new("q4-b128-a4", new Int4Options(128, true, 4)),
        new("q4-b256-a4", new Int4Options(256, true, 4)),
        new("q4-b32-a4-asym", new Int4Options(32, false, 4)),
        new("q4-b128-a4-asym", new Int4Options(128, false, 4)),
        new("q8-b128-a0", new Int4Options(128, true, 0, Bits: 8)), // slow: about a minute per repetition
        new("q8-b128-a4", new Int4Options(128, true, 4, Bits: 8)),
    ];

    public static RandomModelSpec Spec => RandomModelSpec.Preset("bench-125m") with { Seed = 125 };

    /// <summary>
    /// Builds a variant's folder once: ModelBuilder's defaults (last-token logits) for speed, or with every position's
    /// logits for teacher-forced scoring.
    /// </summary>
    public static string Prepare(string repo, WeightVariant variant, Action<string> log, bool scoring = false)
    {
        var folder = variant.Folder(Path.Combine(repo, ".models", scoring ? "quant-bench-125m-all-positions" : "quant-bench-125m"));
        if (File.Exists(Path.Combine(folder, "model.onnx"))) return folder;
        log($"[bench] building {variant.Name} into {folder}");
        ModelFolderBuilder.FromRandom(Spec, folder, new BuildOptions { Int4 = variant.Quantization, LastTokenLogitsOnly = !scoring });
        return folder;
    }

    public static async Task<string> Run(string repo, bool quick, Action<string> log, Func<string> loadAverage)
    {
        var machine = Machine.Describe();
        log($"[bench] {machine}");
        var loadBefore = loadAverage();
        var variants = Variants;
        var folders = variants.ToDictionary(v => v.Name, v => Prepare(repo, v, log));

        // Accuracy: one fixed 256-token text, scored teacher-forced by every build.
        var text = Workloads.Prompt(256, 4242);
        TokenScores reference;
        using (var scorer = new TeacherForcedScorer(Prepare(repo, variants[0], log, scoring: true), Threads)) reference = scorer.Score(text);
        var accuracy = new Dictionary<string, AccuracyResult>();
        foreach (var v in variants.Where(v => v.Quantization is not null))
        {
            using var scorer = new TeacherForcedScorer(Prepare(repo, v, log, scoring: true), Threads);
            accuracy[v.Name] = AccuracyResult.Compare(reference, scorer.Score(text));
            log($"[bench] {v.Name}: mean |Δ logprob| {accuracy[v.Name].MeanAbsDelta:F4}, max {accuracy[v.Name].MaxAbsDelta:F3}, top-1 {accuracy[v.Name].Top1Agreement:P0}");
        }

        var best = variants.ToDictionary(v => v.Name, _ => (Decode: 0.0, Streams: 0.0, Prefill: 0.0));
        var repetitions = quick ? 1 : 3;
        for (var r = 0; r < repetitions; r++)
        foreach (var v in variants)
        {
            using var engine = StartEngine(folders[v.Name], maxBatch: 16);
            await Workloads.EngineDecodeRate(engine, prompt: 16, newTokens: 8); // warm-up
            var decode = await Workloads.EngineDecodeRate(engine, prompt: 16, newTokens: quick ? 32 : 64);
            var prefill = await Workloads.EngineDecodeRate(engine, prompt: 256, newTokens: 2);
            var streams = await Workloads.Engine(engine, streams: 16, rounds: 1, prompt: 32, newTokens: quick ? 16 : 32, TimeSpan.FromSeconds(120));
            var prefillRate = 256 / (prefill.PrefillMilliseconds / 1000);
            var b = best[v.Name];
            best[v.Name] = (Math.Max(b.Decode, decode.TokensPerSecond), Math.Max(b.Streams, streams.TokensPerSecond), Math.Max(b.Prefill, prefillRate));
            log($"[bench] rep {r + 1} {v.Name}: decode {decode.TokensPerSecond:F1} tok/s, 16 streams {streams.TokensPerSecond:F1} tok/s, prefill {prefillRate:F0} tok/s");
        }

        var results = variants.Select(v => new VariantResult(v, FolderBytes(folders[v.Name]),
            best[v.Name].Decode, best[v.Name].Streams, best[v.Name].Prefill, accuracy.GetValueOrDefault(v.Name))).ToList();
        return Markdown(machine.ToString(), loadBefore, loadAverage(), repetitions, results);
    }

    public static InferenceEngine StartEngine(string model, int maxBatch, int sequenceTokens = 512) =>
        InferenceEngine.Start(new InferenceOptions
        {
            ModelPath = model,
            KvCacheBudgetMiB = Math.Max(64, 2.0 * maxBatch * sequenceTokens * 24576 / (1 << 20)),
            MaxSequenceTokens = sequenceTokens,
            MaxBatchSize = maxBatch,
            MaxQueue = 1024,
            PrefillChunkTokens = 512,
            StepTokenBudget = 1024,
            PrefixCaching = false,
            IntraOpThreads = Threads,
        });

    public static long FolderBytes(string folder) => Directory.GetFiles(folder, "model.onnx*").Sum(f => new FileInfo(f).Length);

    private static string Markdown(string machine, string loadBefore, string loadAfter, int repetitions, List<VariantResult> results)
    {
        var f32 = results.First(r => r.Variant.Quantization is null);
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# MatMulNBits settings on ONNX Runtime 1.32's CPU provider");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Machine: {machine}. {Threads} intra-op threads. Load average before: {loadBefore}; after: {loadAfter}.");
        md.AppendLine(CultureInfo.InvariantCulture, $"Model: random `bench-125m` (Llama: 12 layers, hidden 768, 12 heads × 64, 4 kv heads, intermediate 2048, vocabulary 32,000, untied; {Spec.ToConfig().ParameterCount:N0} parameters), built once per setting by ModelBuilder from the same weights (seed {Spec.Seed}); every linear layer and the LM head quantized, the embedding table float32.");
        md.AppendLine(CultureInfo.InvariantCulture, $"Speed through the engine (`bench/InferenceBench --quantization`), best of {repetitions} alternating repetitions: decode = one stream, 64 new tokens after a 16-token prompt; 16 streams = aggregate tokens/s of 16 concurrent requests (32-token prompts, 32 new tokens, prefill included); prefill = a 256-token prompt's tokens / time to first token.");
        md.AppendLine("Accuracy: teacher-forced log-probabilities of a fixed 256-token text against the float32 build (|Δ| per position, mean and max; top-1 = positions where the arg-max agrees). Random Gaussian weights are the hard case for rounding; the trained model's figures are in `quantization-accuracy.md`.");
        md.AppendLine();
        md.AppendLine("| build | bits | block | accuracy_level | zero point | model.onnx | decode tok/s | × f32 | 16 streams tok/s | × f32 | prefill tok/s | × f32 | mean \\|Δ logprob\\| | max \\|Δ logprob\\| | top-1 |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var r in results)
        {
            var q = r.Variant.Quantization;
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Variant.Name} | {(q is null ? "32 (float)" : q.Bits)} | {(q is null ? "–" : q.BlockSize)} | {(q is null ? "–" : q.AccuracyLevel)} | {(q is null ? "–" : q.Symmetric ? "symmetric" : "asymmetric")} | {r.Bytes / 1e6:F0} MB | {r.DecodeTokensPerSecond:F1} | {r.DecodeTokensPerSecond / f32.DecodeTokensPerSecond:F2} | {r.Streams16TokensPerSecond:F1} | {r.Streams16TokensPerSecond / f32.Streams16TokensPerSecond:F2} | {r.PrefillTokensPerSecond:F0} | {r.PrefillTokensPerSecond / f32.PrefillTokensPerSecond:F2} | {(r.Accuracy is { } a ? a.MeanAbsDelta.ToString("F4", CultureInfo.InvariantCulture) : "–")} | {(r.Accuracy is { } b ? b.MaxAbsDelta.ToString("F3", CultureInfo.InvariantCulture) : "–")} | {(r.Accuracy is { } c ? c.Top1Agreement.ToString("P0", CultureInfo.InvariantCulture) : "–")} |");
        }
        return md.ToString();
    }
}
