using System.Diagnostics;
using System.Text;
using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.KvCache;
using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceBench;

/// <summary>
/// Concurrent sequences admitted at a fixed KV budget for a realistic mix (many short chats, a few long documents):
/// whole-context slots (the rule before: budget / (context × bytes per token) slots, at most MaxBatchSize) against
/// token-budget admission, measured. Usage: <c>dotnet run -c Release --project bench/InferenceBench -- --kv</c>;
/// writes bench/results/kv-admission.md.
/// </summary>
public static class KvAdmissionBench
{
    private const int Chats = 60, ChatPrompt = 200, Documents = 4, DocumentPrompt = 1800, Reply = 64, MaxBatch = 64;

    public static async Task Run(string repo, Action<string> log, string loadAtStart)
    {
        var path = Path.Combine(repo, ".models", "bench-25m-vocab32000");
        var table = new StringBuilder();
        table.AppendLine("| KV budget | token budget | whole-context slots (before) | admitted at once (after, measured) | preemptions | all done (s) |");
        table.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var budgetMiB in new[] { 128, 512 })
        {
            using var engine = InferenceEngine.Start(new InferenceOptions
            {
                ModelPath = path, KvCacheBudgetMiB = budgetMiB, MaxBatchSize = MaxBatch, MaxQueue = 1024, PrefixCaching = false,
            });
            var geometry = new KvCacheGeometry(engine.Model.Layers, engine.Model.KvHeads, engine.Model.HeadSize, 4);
            var before = Math.Min(MaxBatch, KvCachePool.SlotsForBudget(geometry, budgetMiB << 20, engine.Status.SlotCapacityTokens));
            var clock = Stopwatch.StartNew();
            var requests = Enumerable.Range(0, Chats + Documents).Select(i => new GenerationRequest
            {
                // Every 16th arrival is a document.
                PromptTokenIds = Workloads.Prompt(i % 16 == 15 ? DocumentPrompt : ChatPrompt, 9000 + i),
                Sampling = SamplingParameters.Greedy, MaxNewTokens = Reply, IgnoreEos = true,
            }).ToList();
            await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r)));
            var seconds = clock.Elapsed.TotalSeconds;
            await Task.Delay(100);
            var s = engine.Status;
            log($"[bench] KV budget {budgetMiB} MiB: before {before} slots, after {s.PeakRunning} running at once, {s.Preemptions} preemptions, {seconds:F1} s");
            table.AppendLine($"| {budgetMiB} MiB | {s.KvTokenBudget:N0} | {before} | {s.PeakRunning} | {s.Preemptions} | {seconds:F1} |");
        }
        var output = Path.Combine(repo, "bench", "results", "kv-admission.md");
        File.WriteAllText(output, $"""
            # KV admission: whole-context slots against a token budget

            `dotnet run -c Release --project bench/InferenceBench -- --kv`. The bench-25m shape (8 layers, 2 KV heads of
            64, float32: 8 KiB of KV per token; context 2048), MaxBatchSize {MaxBatch}, no prefix caching. The mix:
            {Chats} chats of {ChatPrompt} prompt tokens and {Documents} documents of {DocumentPrompt}, all submitted at once, each generating
            {Reply} tokens. "Before" is what the previous pool admitted at that budget: one whole-context slot
            (2048 tokens, 16 MiB) per sequence, at most MaxBatchSize — computed from its rule, since that is all it
            depended on. "After" is measured: the most sequences the engine ran at once (its peak), with sequences
            admitted while their tokens (rounded up to 16-token pages) fit and the newest preempted when decoding
            outgrows the budget.

            {table}
            Load average {loadAtStart} at start, {LoadAverage()} at the end.

            """);
        log($"[bench] wrote {output}");
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
