using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Tests.Engine;

/// <summary>
/// Iteration-level batching must not change what a request computes: a greedy request gives the same tokens alone
/// and batched with requests of other lengths that join and leave while it runs, with chunked prefill interleaved.
/// That they were batched is read from the engine's step metric (sequences per step), not assumed.
/// </summary>
public sealed class ContinuousBatchingTests(TestModel model) : IClassFixture<TestModel>
{
    private static GenerationRequest Greedy(int[] prompt, int maxNewTokens) => new()
    {
        PromptTokenIds = prompt,
        Sampling = SamplingParameters.Greedy,
        MaxNewTokens = maxNewTokens,
        IgnoreEos = true,
    };

    [Fact]
    public async Task Greedy_output_is_the_same_alone_and_batched_with_requests_joining_and_leaving()
    {
        var requests = new[]
        {
            Greedy(TestModel.Prompt(5, 1), 40),
            Greedy(TestModel.Prompt(70, 2), 12),   // longer than a prefill chunk: prefilled over several steps
            Greedy(TestModel.Prompt(17, 3), 25),
            Greedy(TestModel.Prompt(1, 4), 8),
            Greedy(TestModel.Prompt(33, 5), 30),
        };

        using var engine = model.Start(o => o.PrefixCaching = false);
        var alone = new List<int[]>();
        foreach (var r in requests) alone.Add((await engine.GenerateAsync(r)).Sequences[0].TokenIds);

        // Start the first two, then let the others join while those decode; the engine's step metric records how
        // many sequences each step computed.
        using var steps = new StepListener(engine);
        var first = requests.Take(2).Select(r => engine.GenerateAsync(r)).ToList();
        await WaitForTokens(engine, 6);
        var rest = requests.Skip(2).Select(r => engine.GenerateAsync(r)).ToList();
        var batched = (await Task.WhenAll(first.Concat(rest))).Select(c => c.Sequences[0].TokenIds).ToList();

        for (var i = 0; i < requests.Length; i++)
        {
            Assert.Equal(requests[i].MaxNewTokens, alone[i].Length);
            Assert.Equal(alone[i], batched[i]);
        }
        // The requests shared engine steps: some steps ran several sequences at once (up to all five), and there
        // were fewer steps than the tokens they generated (one step per token each would be no batching at all).
        var sizes = steps.Sizes;
        var generated = requests.Sum(r => r.MaxNewTokens!.Value);
        Assert.Contains(sizes, n => n >= 3);
        Assert.True(sizes.Count < generated, $"{sizes.Count} steps for {generated} tokens: the requests did not share steps");
        Assert.True(sizes.Count(n => n >= 2) >= 5, $"steps per size: {string.Join(", ", sizes.GroupBy(n => n).OrderBy(g => g.Key).Select(g => $"{g.Key}×{g.Count()}"))}");
    }

    [Fact]
    public async Task Requests_alone_take_one_step_per_token_each()
    {
        using var engine = model.Start(o => o.PrefixCaching = false);
        using var steps = new StepListener(engine);
        await engine.GenerateAsync(Greedy(TestModel.Prompt(5, 1), 10));
        await engine.GenerateAsync(Greedy(TestModel.Prompt(6, 2), 10));

        // One prefill step (the prompt fits a chunk) that gives the first token, then one decode step per token.
        Assert.Equal(Enumerable.Repeat(1, 20), steps.Sizes);
    }

    /// <summary>The sequences of every step of one engine, from its <c>chatservices.inference.step.sequences</c> metric.</summary>
    private sealed class StepListener : IDisposable
    {
        private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
        private readonly List<int> _sizes = [];

        public StepListener(InferenceEngine engine)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter == engine.Metrics.Meter && instrument.Name == "chatservices.inference.step.sequences")
                    listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<int>((_, value, _, _) => { lock (_sizes) _sizes.Add(value); });
            _listener.Start();
        }

        public List<int> Sizes
        {
            get { lock (_sizes) return [.. _sizes]; }
        }

        public void Dispose() => _listener.Dispose();
    }

    [Fact]
    public async Task A_request_streams_one_event_per_step_then_a_completion_with_usage()
    {
        using var engine = model.Start();
        var reader = engine.Submit(Greedy(TestModel.Prompt(9), 6));
        var steps = new List<TokensGenerated>();
        GenerationCompleted? done = null;
        await foreach (var e in reader.ReadAllAsync())
            if (e is TokensGenerated t) steps.Add(t);
            else done = (GenerationCompleted)e;

        Assert.Equal(6, steps.Count);
        Assert.All(steps, s => Assert.Single(s.Tokens));
        Assert.NotNull(done);
        Assert.Equal(steps.Select(s => s.Tokens[0].TokenId), done.Sequences[0].TokenIds);
        Assert.Equal(FinishReason.Length, done.Sequences[0].FinishReason);
        Assert.Equal(9, done.Usage.PromptTokens);
        Assert.Equal(6, done.Usage.CompletionTokens);
        Assert.True(done.Usage.TimeToFirstTokenSeconds > 0);
    }

    internal static async Task WaitForTokens(InferenceEngine engine, long tokens)
    {
        var start = engine.Status.GeneratedTokens;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (engine.Status.GeneratedTokens - start < tokens)
        {
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"the engine did not generate {tokens} tokens within 30 s");
            await Task.Delay(1);
        }
    }
}
