using System.Globalization;
using System.Text;
using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;
using ChatServices.ModelBuilder.Checkpoints;
using ChatServices.ModelBuilder.Folder;
using ChatServices.ModelBuilder.Gguf;

namespace ChatServices.InferenceBench;

/// <summary>
/// The engine beside llama.cpp on the same weights at equal bytes per weight: the engine's float32 build against
/// llama.cpp F32 and F16, its 4-bit build (ModelBuilder's default settings) against Q4_0, its 8-bit build against
/// Q8_0. GGUF files come from ModelBuilder's GGUF writer on the same random checkpoint as QuantizationBench's
/// folders. Both run 2 threads; each comparison alternates the two systems and keeps each one's best repetition.
/// </summary>
public static class LlamaCppBench
{
    private sealed record Pair(string Ours, GgufType Theirs);

    private sealed record Row(string Workload, double Ours, double Theirs);

    private static readonly Pair[] Pairs =
    [
        new("f32", GgufType.F32),
        new("f32", GgufType.F16),
        new("q4-b128-a4", GgufType.Q4_0),
        new("q8-b128-a4", GgufType.Q8_0),
    ];

    public static async Task<string> Run(string repo, bool quick, Action<string> log, Func<string> loadAverage)
    {
        var machine = Machine.Describe();
        log($"[bench] {machine}");
        var loadBefore = loadAverage();
        var root = Path.Combine(repo, ".models", "quant-bench-125m");
        var tokenizer = Path.Combine(repo, "node_modules", "@lenml", "tokenizer-llama2", "models");
        var ggufs = Pairs.Select(p => p.Theirs).Distinct().ToDictionary(t => t, t => Gguf(root, tokenizer, t, log));
        var repetitions = quick ? 1 : 3;
        var md = new StringBuilder();
        var text = Workloads.Prompt(256, 4242);
        TokenScores reference;
        using (var scorer = new TeacherForcedScorer(QuantizationBench.Prepare(repo, QuantizationBench.Variants[0], log, scoring: true), QuantizationBench.Threads))
            reference = scorer.Score(text);

        // Greedy tokens at float32: the same function in both systems (the rotary permutation, norms, GQA) or not.
        string agreement;
        {
            var prompt = Workloads.Prompt(16, 777);
            using var engine = QuantizationBench.StartEngine(QuantizationBench.Prepare(repo, QuantizationBench.Variants[0], log), maxBatch: 1);
            var ours = await EngineGreedy(engine, prompt, 64);
            using var peer = new LlamaCppPeer(ggufs[GgufType.F32], QuantizationBench.Threads, 1, 1024);
            var (theirs, _) = peer.Greedy(prompt, 64);
            var same = ours.Zip(theirs).TakeWhile(p => p.First == p.Second).Count();
            agreement = $"{same} of 64 greedy tokens identical (engine float32 vs llama.cpp F32, 16-token prompt)";
            log($"[bench] {agreement}");
        }

        var tables = new List<(Pair Pair, List<Row> Rows, AccuracyResult Ours, AccuracyResult Theirs, long OurBytes, long TheirBytes)>();
        foreach (var pair in Pairs)
        {
            var variant = QuantizationBench.Variants.First(v => v.Name == pair.Ours);
            var folder = QuantizationBench.Prepare(repo, variant, log);
            using var peer = new LlamaCppPeer(ggufs[pair.Theirs], QuantizationBench.Threads, 16, 16 * 320);
            using var engine = QuantizationBench.StartEngine(folder, maxBatch: 16);
            AccuracyResult ourAccuracy, theirAccuracy;
            using (var scorer = new TeacherForcedScorer(QuantizationBench.Prepare(repo, variant, log, scoring: true), QuantizationBench.Threads)) ourAccuracy = AccuracyResult.Compare(reference, scorer.Score(text));
            theirAccuracy = AccuracyResult.Compare(reference, peer.Score(text));

            await Workloads.EngineDecodeRate(engine, prompt: 16, newTokens: 8); // warm-up
            peer.Greedy(Workloads.Prompt(16, 1), 8);
            var best = new Dictionary<string, (double Ours, double Theirs)>();
            void Keep(string workload, double ours, double theirs)
            {
                var b = best.GetValueOrDefault(workload);
                best[workload] = (Math.Max(b.Ours, ours), Math.Max(b.Theirs, theirs));
                log($"[bench] {pair.Ours} vs {pair.Theirs}, {workload}: ours {ours:F1}, llama.cpp {theirs:F1}");
            }
            for (var r = 0; r < repetitions; r++)
            {
                var newTokens = quick ? 32 : 64;
                Keep("decode, 1 stream (tok/s)", (await Workloads.EngineDecodeRate(engine, 16, newTokens)).TokensPerSecond, peer.Greedy(Workloads.Prompt(16, 777), newTokens).Rate.TokensPerSecond);
                var ourPrefill = await Workloads.EngineDecodeRate(engine, 256, 2);
                var theirPrefill = peer.Greedy(Workloads.Prompt(256, 777), 2).Rate;
                Keep("prefill, 256-token prompt (tok/s)", 256 / (ourPrefill.PrefillMilliseconds / 1000), 256 / (theirPrefill.PrefillMilliseconds / 1000));
                foreach (var streams in new[] { 4, 16 })
                {
                    var ours = await Workloads.Engine(engine, streams, 1, prompt: 32, newTokens: 32, TimeSpan.FromSeconds(120));
                    var theirs = peer.Streams(streams, prompt: 32, newTokens: 32);
                    Keep($"{streams} streams (tok/s, prefill included)", ours.TokensPerSecond, theirs.TokensPerSecond);
                }
            }
            tables.Add((pair, best.Select(kv => new Row(kv.Key, kv.Value.Ours, kv.Value.Theirs)).ToList(), ourAccuracy, theirAccuracy,
                QuantizationBench.FolderBytes(folder), new FileInfo(ggufs[pair.Theirs]).Length));
        }

        md.AppendLine("# The engine beside llama.cpp, same weights, equal bytes per weight");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Machine: {machine}. 2 threads each. Load average before: {loadBefore}; after: {loadAverage()}.");
        md.AppendLine("Model: random `bench-125m` (Llama: 12 layers, hidden 768, 12 heads × 64, 4 kv heads, intermediate 2048, Llama 2 vocabulary of 32,000, untied), the same weights in every build: ONNX folders by ModelBuilder, GGUF files by ModelBuilder's GGUF writer (`--gguf`). llama.cpp: LLamaSharp 0.30.0 + LLamaSharp.Backend.Cpu 0.30.0 (its AVX-512 build on this CPU), default context settings (float16 KV cache), greedy on token ids; several streams run as sequences of one context in one batch per step (llama.cpp's batched decoding). The engine: `InferenceEngine` in-process, greedy.");
        md.AppendLine(CultureInfo.InvariantCulture, $"Best of {repetitions} alternating repetitions. Decode: 64 new tokens after a 16-token prompt, first to last token. Prefill: 256-token prompt / time to first token. Streams: concurrent requests with 32-token prompts and 32 new tokens, aggregate tokens/s from submission to the last token. Both compute logits at the last prompt position only (ModelBuilder's default graphs).");
        md.AppendLine(CultureInfo.InvariantCulture, $"Float32 check: {agreement}.");
        md.AppendLine();
        foreach (var t in tables)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"## engine `{t.Pair.Ours}` ({t.OurBytes / 1e6:F0} MB) vs llama.cpp {t.Pair.Theirs} ({t.TheirBytes / 1e6:F0} MB)");
            md.AppendLine();
            md.AppendLine("| workload | engine | llama.cpp | engine ÷ llama.cpp |");
            md.AppendLine("| --- | --- | --- | --- |");
            foreach (var row in t.Rows)
                md.AppendLine(CultureInfo.InvariantCulture, $"| {row.Workload} | {row.Ours:F1} | {row.Theirs:F1} | {row.Ours / row.Theirs:F2}× |");
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| accuracy vs float32 ONNX: mean / max \\|Δ logprob\\|, top-1 | {t.Ours.MeanAbsDelta:F4} / {t.Ours.MaxAbsDelta:F3}, {t.Ours.Top1Agreement:P0} | {t.Theirs.MeanAbsDelta:F4} / {t.Theirs.MaxAbsDelta:F3}, {t.Theirs.Top1Agreement:P0} | |");
            md.AppendLine();
        }
        return md.ToString();
    }

    private static string Gguf(string root, string tokenizer, GgufType type, Action<string> log)
    {
        var path = Path.Combine(root, "gguf", $"bench-125m-{type}.gguf");
        if (File.Exists(path)) return path;
        log($"[bench] writing {path}");
        var (config, vocabulary) = ModelFolderBuilder.RandomConfig(QuantizationBench.Spec, tokenizer);
        using var weights = new RandomCheckpoint(config, QuantizationBench.Spec.Seed);
        GgufWriter.Write(config, weights, vocabulary!, path, type);
        return path;
    }

    public static async Task<int[]> EngineGreedy(InferenceEngine engine, int[] prompt, int newTokens)
    {
        var tokens = new List<int>();
        var request = new GenerationRequest { PromptTokenIds = prompt, Sampling = SamplingParameters.Greedy, MaxNewTokens = newTokens, IgnoreEos = true };
        await foreach (var e in engine.Submit(request).ReadAllAsync())
            if (e is TokensGenerated step) tokens.AddRange(step.Tokens.Select(t => t.TokenId));
        return [.. tokens];
    }
}
