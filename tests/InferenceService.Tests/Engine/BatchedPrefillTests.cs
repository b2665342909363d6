using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Tests.Engine;

/// <summary>
/// First prompt chunks of several sequences computed in one ONNX Runtime run (right padded) give the tokens that one
/// run per chunk gives, beside later chunks, decoding sequences, samples and prefix-cache hits (which run alone).
/// </summary>
public sealed class BatchedPrefillTests(TestModel model, AllPositionLogitsTestModel allPositions)
    : IClassFixture<TestModel>, IClassFixture<AllPositionLogitsTestModel>
{
    private static GenerationRequest Greedy(int[] prompt, int maxNewTokens) => new()
    {
        PromptTokenIds = prompt,
        Sampling = SamplingParameters.Greedy,
        MaxNewTokens = maxNewTokens,
        IgnoreEos = true,
    };

    // Lengths around the 32-token chunk: single chunks of different lengths, two full chunks, a full chunk then a short one.
    private static readonly int[] Lengths = [5, 17, 3, 40, 64, 33, 1, 29, 64, 12];

    public static TheoryData<bool> LogitsKinds => [true, false];

    [Theory]
    [MemberData(nameof(LogitsKinds))]
    public async Task Batched_prefill_gives_the_greedy_tokens_of_one_run_per_chunk(bool lastTokenLogits)
    {
        var folder = lastTokenLogits ? model : (TestModel)allPositions;
        var requests = Lengths.Select((n, i) => Greedy(TestModel.Prompt(n, 600 + i), 12)).ToList();
        // A sampled request with two samples (forked from the prompt's KV) and a seed rides along.
        requests.Add(new GenerationRequest
        {
            PromptTokenIds = TestModel.Prompt(21, 650), N = 2, MaxNewTokens = 10, IgnoreEos = true,
            Sampling = new SamplingParameters { Temperature = 0.8f, TopK = 20, Seed = 9 },
        });

        var (expected, single) = await Run(folder, requests, batched: false);
        var (actual, batched) = await Run(folder, requests, batched: true);

        Assert.Equal(expected, actual);
        Assert.Equal(single.PrefillChunks, single.PrefillRuns);
        // How many arrive before the engine's next step depends on timing; some chunks always share a run.
        Assert.True(batched.PrefillRuns < batched.PrefillChunks,
            $"{batched.PrefillChunks} chunks in {batched.PrefillRuns} runs: prompts were not batched");
    }

    [Fact]
    public async Task Prompts_arriving_while_others_decode_and_prefix_cache_hits_give_the_tokens_of_one_run_per_chunk()
    {
        var shared = TestModel.Prompt(45, 660);
        // Three continue the first request's prompt (prefix-cache hits, computed alone), three are new (batched).
        var requests = Enumerable.Range(0, 7)
            .Select(i => Greedy(i < 4 ? [.. shared, .. TestModel.Prompt(3 + 4 * i, 670 + i)] : TestModel.Prompt(10 + 7 * i, 680 + i), 10))
            .ToList();
        async Task<List<int[]>> Generate(InferenceEngine engine)
        {
            // One request first (decoding when the others arrive, its prompt then cached), then the rest at once.
            var first = await engine.GenerateAsync(requests[0]);
            var rest = await Task.WhenAll(requests.Skip(1).Select(r => engine.GenerateAsync(r)));
            Assert.True(rest.Any(r => r.Usage.CachedPromptTokens > 0), "prefix cache used");
            return [first.Sequences[0].TokenIds, .. rest.Select(r => r.Sequences[0].TokenIds)];
        }

        using var single = model.Start(o => o.BatchedPrefill = false);
        using var batched = model.Start();
        Assert.Equal(await Generate(single), await Generate(batched));
        Assert.True(batched.Status.PrefillRuns < batched.Status.PrefillChunks);
    }

    [Fact]
    public async Task First_chunks_longer_than_the_batched_limit_run_alone()
    {
        // Every first chunk here is longer than 16 tokens except the two shortest prompts, which share runs.
        var requests = new[] { 20, 30, 25, 28, 8, 6 }.Select((n, i) => Greedy(TestModel.Prompt(n, 700 + i), 4)).ToList();
        var (expected, _) = await Run(model, requests, batched: false);
        var (actual, status) = await Run(model, requests, batched: true, maxBatchedChunk: 16);
        Assert.Equal(expected, actual);
        // 4 long first chunks alone, plus at most 2 runs for the 2 short ones (1 when they arrive together).
        Assert.Equal(6, status.PrefillChunks);
        Assert.InRange(status.PrefillRuns, 5, 6);
    }

    private static async Task<(List<string> Tokens, EngineStatus Status)> Run(TestModel folder, List<GenerationRequest> requests, bool batched,
        int maxBatchedChunk = 64)
    {
        using var engine = folder.Start(o =>
        {
            o.BatchedPrefill = batched;
            o.BatchedPrefillMaxChunkTokens = maxBatchedChunk;
            o.MaxBatchSize = 16;
            o.StepTokenBudget = 128;
            o.KvCacheBudgetMiB = 8;
        });
        var results = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r)));
        // Status is published after the step that completed the last request.
        await Task.Delay(50);
        return ([.. results.SelectMany(r => r.Sequences.Select(s => string.Join(',', s.TokenIds)))], engine.Status);
    }
}
