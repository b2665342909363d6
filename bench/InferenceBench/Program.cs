using System.Diagnostics;
using System.Globalization;
using System.Text;
using ChatServices.InferenceBench;
using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;
using ChatServices.ModelBuilder;
using ChatServices.ModelBuilder.Folder;
using GenAi = Microsoft.ML.OnnxRuntimeGenAI;

// Engine benchmarks on the CPU provider: the InferenceService engine in-process beside ONNX Runtime GenAI's own
// generator on the same ~25M-parameter model folder, in the same run. Writes bench/results/inference.md.
// Usage: dotnet run -c Release --project bench/InferenceBench [-- --quick]
//        ... -- --quantization   MatMulNBits settings against float32 (bench/results/quantization.md)
//        ... -- --accuracy       quantized builds of the trained default model against float32 (quantization-accuracy.md)
//        ... -- --llamacpp       the engine beside llama.cpp on the same weights (bench/results/llamacpp.md)
// Constrained decoding costs (bench/results/constraints.md): ... -- --constraints
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var quick = args.Contains("--quick");
var raw = new StringBuilder(); // every [bench] line, kept as the report's raw output
void Log(string line) { Console.WriteLine(line); raw.AppendLine(line); }
var repo = FindRepoRoot();
if (args.Contains("--accuracy"))
{
    // Quantized builds of the trained default model against float32: see TrainedModelAccuracy.
    WriteResult("quantization-accuracy.md", TrainedModelAccuracy.Run(repo, Log, LoadAverage));
    return;
}
if (args.Contains("--llamacpp"))
{
    // The engine beside llama.cpp at equal bytes per weight: see LlamaCppBench.
    WriteResult("llamacpp.md", await LlamaCppBench.Run(repo, quick, Log, LoadAverage));
    return;
}
if (args.Contains("--quantization"))
{
    // MatMulNBits settings: see QuantizationBench.
    WriteResult("quantization.md", await QuantizationBench.Run(repo, quick, Log, LoadAverage));
    return;
}
if (args.Contains("--constraints"))
{
    await ConstraintBench.RunAsync(repo, quick, Log, LoadAverage);
    return;
}
if (args.Contains("--sampler"))
{
    var label = args.SkipWhile(a => a != "--label").Skip(1).FirstOrDefault() ?? "TokenSampler";
    await SamplerBench.Run(repo, label, Log, LoadAverage());
    return;
}
if (args.Contains("--kv"))
{
    await KvAdmissionBench.Run(repo, Log, LoadAverage());
    return;
}
if (args.Contains("--prefill"))
{
    await PrefillBench.Run(repo, Log, LoadAverage());
    return;
}
var modelPath = Path.Combine(repo, ".models", "bench-25m-ctx4096");
if (!File.Exists(Path.Combine(modelPath, "model.onnx")))
{
    Log($"[bench] building the bench-25m random model (context 4096) into {modelPath}");
    ModelFolderBuilder.FromRandom(RandomModelSpec.Preset("bench-25m") with { ContextLength = 4096, Seed = 25 }, modelPath, new BuildOptions());
}
var weightBytes = Directory.GetFiles(modelPath, "model.onnx*").Sum(f => new FileInfo(f).Length);

Console.WriteLine("[bench] measuring memory bandwidth");
var machine = Machine.Describe();
Log($"[bench] {machine}");
var report = new Report(machine, weightBytes, quick, LoadAverage());

// The machine is shared and noisy: each comparison alternates the two systems and keeps each one's best repetition.
var repetitions = quick ? 1 : 3;
using var genAiModel = new GenAi.Model(modelPath);
Workloads.GenAi(genAiModel, 1, 1, 16, 16, TimeSpan.FromSeconds(30)); // warm-up

// 1. Single-stream decode, beside the bandwidth bound (every decode step reads all weights once).
{
    using var engine = Start(modelPath, maxBatch: 1, sequenceTokens: 512, prefixCaching: false);
    await Workloads.Engine(engine, streams: 1, rounds: 1, prompt: 16, newTokens: 16, TimeSpan.FromSeconds(30)); // warm-up
    DecodeRate? ours = null, theirs = null;
    for (var r = 0; r < 2 * repetitions - 1; r++) // short: more repetitions for a steadier best
    {
        var o = await Workloads.EngineDecodeRate(engine, prompt: 16, newTokens: quick ? 64 : 128);
        var t = Workloads.GenAiDecodeRate(genAiModel, prompt: 16, newTokens: quick ? 64 : 128);
        if (ours is null || o.TokensPerSecond > ours.TokensPerSecond) ours = o;
        if (theirs is null || t.TokensPerSecond > theirs.TokensPerSecond) theirs = t;
        Log($"[bench] single stream: ours {o.TokensPerSecond:F1} tok/s, GenAI {t.TokensPerSecond:F1} tok/s");
    }
    report.SingleStream(ours!, theirs!);
}

// 2. Aggregate throughput and time to first token at 1, 4, 16, 64 concurrent streams.
foreach (var (streams, rounds, newTokens) in new[] { (1, 2, 64), (4, 2, 64), (16, 1, 64), (64, 1, 32) })
{
    var budget = TimeSpan.FromSeconds(quick ? 20 : 60);
    LoadResult? ours = null, theirs = null;
    using var engine = Start(modelPath, maxBatch: 64, sequenceTokens: 128, prefixCaching: false);
    await Workloads.Engine(engine, 1, 1, 32, 8, budget); // warm-up
    for (var r = 0; r < repetitions; r++)
    {
        var o = await Workloads.Engine(engine, streams, rounds, prompt: 32, newTokens, budget);
        var t = Workloads.GenAi(genAiModel, streams, rounds, prompt: 32, newTokens, budget);
        if (ours is null || o.TokensPerSecond > ours.TokensPerSecond) ours = o;
        if (theirs is null || t.TokensPerSecond > theirs.TokensPerSecond) theirs = t;
        Log($"[bench] {streams} streams: ours {o.TokensPerSecond:F0} tok/s, GenAI {t.TokensPerSecond:F0} tok/s");
    }
    report.Concurrency(streams, newTokens, ours!, theirs!);
}

// 3. Decode step time as the context grows.
{
    using var engine = Start(modelPath, maxBatch: 1, sequenceTokens: 4096, prefixCaching: false, prefillChunk: 512);
    await Workloads.Engine(engine, 1, 1, 16, 8, TimeSpan.FromSeconds(30));
    foreach (var context in new[] { 1024, 2048, 4096 })
    {
        var rate = await Workloads.EngineDecodeRate(engine, prompt: context - 32, newTokens: 32);
        report.Context(context, rate);
        Log($"[bench] context {context}: {rate.StepMilliseconds:F2} ms/step");
    }
}

// 4. A chat-shaped workload: conversations re-send their whole history every turn.
foreach (var caching in new[] { true, false })
{
    using var engine = Start(modelPath, maxBatch: 16, sequenceTokens: 512, prefixCaching: caching);
    await Workloads.Engine(engine, 1, 1, 16, 8, TimeSpan.FromSeconds(30));
    var chat = await Workloads.Chat(engine, conversations: 8, turns: quick ? 3 : 5, system: 96, user: 32, reply: 32);
    report.Chat(caching, chat, engine.Status);
    Log($"[bench] chat, prefix caching {(caching ? "on" : "off")}: {chat.Seconds:F2} s, TTFT p50 {chat.TtftP50:F1} ms");
}

report.Finished(LoadAverage(), raw.ToString());
var output = Path.Combine(repo, "bench", "results", quick ? "inference-quick.md" : "inference.md");
File.WriteAllText(output, report.ToMarkdown());
Log($"[bench] wrote {output}");
Console.WriteLine(report.ToMarkdown());

static InferenceEngine Start(string model, int maxBatch, int sequenceTokens, bool prefixCaching, int prefillChunk = 256)
{
    // KV budget: every running sequence plus as many cached ones, at 8 KiB per token for this model.
    var budgetMiB = Math.Max(8.0, 2.0 * maxBatch * sequenceTokens * 8192 / (1 << 20));
    return InferenceEngine.Start(new InferenceOptions
    {
        ModelPath = model,
        KvCacheBudgetMiB = budgetMiB,
        MaxSequenceTokens = sequenceTokens,
        MaxBatchSize = maxBatch,
        MaxQueue = 1024,
        PrefillChunkTokens = prefillChunk,
        StepTokenBudget = Math.Max(512, maxBatch),
        PrefixCaching = prefixCaching,
    });
}

void WriteResult(string file, string table)
{
    File.WriteAllText(Path.Combine(repo, "bench", "results", file), $"{table}\n## Raw output\n\n```\n{raw}```\n");
    Console.WriteLine(table);
}

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

static string FindRepoRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "ChatServices.sln"))) return dir.FullName;
    throw new InvalidOperationException("ChatServices.sln not found above the program.");
}
