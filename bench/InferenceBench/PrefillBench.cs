using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;
using ChatServices.ModelBuilder;
using ChatServices.ModelBuilder.Folder;

namespace ChatServices.InferenceBench;

/// <summary>
/// Time to first token and throughput when many new requests arrive at once, with prompt chunks computed one run
/// each or batched (<see cref="InferenceOptions.BatchedPrefill"/>), alternating in one run. Usage:
/// <c>dotnet run -c Release --project bench/InferenceBench -- --prefill</c>; writes bench/results/prefill.md.
/// </summary>
public static class PrefillBench
{
    private const int NewTokens = 16;

    public static async Task Run(string repo, Action<string> log, string loadAtStart)
    {
        var path = Path.Combine(repo, ".models", "bench-25m-vocab32000");
        if (!File.Exists(Path.Combine(path, "model.onnx")))
        {
            log($"[bench] building the bench-25m shape (last-token logits) into {path}");
            ModelFolderBuilder.FromRandom(RandomModelSpec.Preset("bench-25m") with { Seed = 26 }, path, new BuildOptions());
        }
        var table = new StringBuilder();
        table.AppendLine("| requests at once | prompt tokens | prefill | TTFT p50 (ms) | TTFT p99 (ms) | all done (s) | generated tok/s | prompt tok/s | ORT runs for prompts |");
        table.AppendLine("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var (requests, prompt) in new[] { (16, 24), (16, 400), (64, 24), (64, 400) })
        {
            var results = new Dictionary<bool, List<Result>> { [false] = [], [true] = [] };
            for (var rep = 0; rep < 2; rep++)
                foreach (var batched in new[] { false, true })
                {
                    using var engine = Start(path, batched);
                    await Burst(engine, 4, 16, 1000); // warm-up
                    var r = await Burst(engine, requests, prompt, rep * 100);
                    results[batched].Add(r with { Runs = engine.Status.PrefillRuns, Chunks = engine.Status.PrefillChunks });
                    log($"[bench] {requests} × {prompt} tokens, batched prefill {(batched ? "on" : "off")}: TTFT p50 {r.P50:F0} ms p99 {r.P99:F0} ms, {r.Seconds:F2} s");
                }
            foreach (var batched in new[] { false, true })
            {
                // The better of two repetitions (lower p50), on a shared machine.
                var best = results[batched].MinBy(r => r.P50)!;
                table.AppendLine($"| {requests} | {prompt} | {(batched ? "batched" : "one run per chunk")} | {best.P50:F0} | {best.P99:F0} | {best.Seconds:F2} | " +
                    $"{requests * NewTokens / best.Seconds:F0} | {requests * prompt / best.Seconds:F0} | {best.Runs} for {best.Chunks} chunks |");
            }
        }
        var output = Path.Combine(repo, "bench", "results", "prefill.md");
        File.WriteAllText(output, $"""
            # Batched prefill: many new requests at once

            `dotnet run -c Release --project bench/InferenceBench -- --prefill`. The bench-25m shape (8 layers, hidden
            256, vocabulary 32,000, last-token logits) on the CPU provider; engine: MaxBatchSize 64, StepTokenBudget 512,
            PrefillChunkTokens 256, no prefix caching. N requests with distinct prompts are submitted at once, each
            generating {NewTokens} tokens greedily. "one run per chunk" is `Inference:BatchedPrefill=false` (each prompt
            chunk its own ONNX Runtime run, as before); "batched" runs the first chunks of new prompts together, right
            padded. The two alternate, twice each, in one process; the better repetition (lower TTFT p50) is shown.
            "ORT runs for prompts" counts the whole engine life, warm-up included. Throughput: generated tokens and
            prompt tokens over the time until the last request finished.

            {table}
            Load average {loadAtStart} at start, {LoadAverage()} at the end.

            """);
        log($"[bench] wrote {output}");
    }

    private static InferenceEngine Start(string model, bool batched) => InferenceEngine.Start(new InferenceOptions
    {
        ModelPath = model,
        KvCacheBudgetMiB = 600,
        MaxSequenceTokens = 512,
        MaxBatchSize = 64,
        MaxQueue = 1024,
        PrefillChunkTokens = 256,
        StepTokenBudget = 512,
        PrefixCaching = false,
        BatchedPrefill = batched,
    });

    private sealed record Result(double P50, double P99, double Seconds, long Runs = 0, long Chunks = 0);

    private static async Task<Result> Burst(InferenceEngine engine, int requests, int prompt, int salt)
    {
        var ttft = new ConcurrentBag<double>();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, requests).Select(i => Task.Run(async () =>
        {
            var request = new GenerationRequest
            {
                PromptTokenIds = Workloads.Prompt(prompt, salt * 1000 + i), Sampling = SamplingParameters.Greedy,
                MaxNewTokens = NewTokens, IgnoreEos = true,
            };
            var start = Stopwatch.GetTimestamp();
            var first = true;
            await foreach (var e in engine.Submit(request).ReadAllAsync())
                if (e is TokensGenerated && first) { ttft.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds); first = false; }
        })));
        var seconds = clock.Elapsed.TotalSeconds;
        var sorted = ttft.Order().ToArray();
        return new Result(sorted[sorted.Length / 2], sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(0.99 * sorted.Length) - 1)], seconds);
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
