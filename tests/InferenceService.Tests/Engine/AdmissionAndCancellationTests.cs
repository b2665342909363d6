using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Tests.Engine;

/// <summary>Bad parameters are refused naming the field; a full queue refuses at once; cancellation frees KV.</summary>
public sealed class AdmissionAndCancellationTests(SlowerTestModel model) : IClassFixture<SlowerTestModel>
{
    private static GenerationRequest Valid => new()
    {
        PromptTokenIds = TestModel.Prompt(8),
        Sampling = SamplingParameters.Greedy,
        MaxNewTokens = 4,
    };

    public static TheoryData<string, Func<GenerationRequest, GenerationRequest>> InvalidRequests => new()
    {
        { "sampling.temperature", r => r with { Sampling = new SamplingParameters { Temperature = -0.5f } } },
        { "sampling.top_p", r => r with { Sampling = new SamplingParameters { TopP = 0f } } },
        { "sampling.top_p", r => r with { Sampling = new SamplingParameters { TopP = 1.5f } } },
        { "sampling.top_k", r => r with { Sampling = new SamplingParameters { TopK = -1 } } },
        { "sampling.min_p", r => r with { Sampling = new SamplingParameters { MinP = 2f } } },
        { "sampling.repetition_penalty", r => r with { Sampling = new SamplingParameters { RepetitionPenalty = 0f } } },
        { "max_new_tokens", r => r with { MaxNewTokens = 0 } },
        { "prompt_token_ids", r => r with { PromptTokenIds = TestModel.Prompt(1200) } },
        { "prompt_token_ids", r => r with { PromptTokenIds = [5, 512, 7] } },
        { "prompt_token_ids", r => r with { PromptTokenIds = [-1] } },
        { "prompt_token_ids", r => r with { PromptTokenIds = [] } },
        { "stop_token_ids", r => r with { StopTokenIds = [100000] } },
        { "n", r => r with { N = 0 } },
        { "top_logprobs", r => r with { TopLogprobs = 21 } },
        { "beam_search.num_beams", r => r with { BeamSearch = new BeamSearchParameters(0) } },
    };

    // Slots of 1200 tokens of this model (4 KiB per token): 32 MiB holds six.
    private InferenceEngine Start(Action<InferenceOptions>? configure = null) => model.Start(o =>
    {
        o.KvCacheBudgetMiB = 32;
        o.MaxSequenceTokens = 1200;
        configure?.Invoke(o);
    });

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public void Invalid_parameters_are_refused_naming_the_field(string field, Func<GenerationRequest, GenerationRequest> mutate)
    {
        using var engine = Start();
        var error = Assert.Throws<InvalidRequestException>(() => engine.Submit(mutate(Valid)));
        Assert.Equal(field, error.Field);
        Assert.StartsWith(field + ":", error.Message);
    }

    [Fact]
    public async Task A_full_queue_refuses_at_once_with_a_clear_message_and_accepted_requests_complete()
    {
        // One running sequence, at most two waiting: a burst of fifty submitted faster than a step admits one must
        // see refusals, and every request that was accepted still completes.
        using var engine = Start(o => { o.MaxBatchSize = 1; o.MaxQueue = 2; });
        await engine.GenerateAsync(Valid); // compiles the submission path, so the burst below is microseconds
        var accepted = new List<System.Threading.Channels.ChannelReader<GenerationEvent>>();
        var refused = new List<QueueFullException>();
        for (var i = 0; i < 50; i++)
        {
            try { accepted.Add(engine.Submit(Valid with { MaxNewTokens = 20, IgnoreEos = true })); }
            catch (QueueFullException e) { refused.Add(e); }
        }
        Assert.NotEmpty(refused);
        Assert.True(accepted.Count >= 2);
        Assert.Contains("queue is full", refused[0].Message);
        foreach (var reader in accepted)
        {
            var events = new List<GenerationEvent>();
            await foreach (var e in reader.ReadAllAsync()) events.Add(e);
            Assert.Equal(20, ((GenerationCompleted)events[^1]).Usage.CompletionTokens);
        }
        Assert.Equal(20, (await engine.GenerateAsync(Valid with { MaxNewTokens = 20 })).Usage.CompletionTokens);
    }

    // A request of over a thousand steps: a 1000-token prompt fed one token per step, then 150 decode steps.
    private static GenerationRequest Slow => Valid with { PromptTokenIds = TestModel.Prompt(1000, 9), MaxNewTokens = 150, IgnoreEos = true };

    private InferenceEngine StartSlow() => Start(o => { o.PrefixCaching = false; o.PrefillChunkTokens = 1; o.StepTokenBudget = 8; });

    [Fact]
    public async Task Cancelling_a_running_request_ends_its_stream_and_frees_its_kv_slot()
    {
        using var engine = StartSlow();
        using var cts = new CancellationTokenSource();
        var reader = engine.Submit(Slow, cts.Token);
        Assert.True(SpinWait.SpinUntil(() => engine.Status.KvTokensUsed >= 20, TimeSpan.FromSeconds(10)));
        Assert.Equal(1, engine.Status.SlotsInUse);

        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => { await foreach (var _ in reader.ReadAllAsync()) { } });
        await WaitUntil(() => engine.Status is { SlotsInUse: 0, Running: 0, KvTokensUsed: 0 });
        Assert.Equal(0, engine.Status.SlotsInUse);
        Assert.Equal(0, engine.Status.KvTokensUsed);
    }

    [Fact]
    public async Task A_passed_deadline_cancels_the_request_at_the_next_step()
    {
        using var engine = StartSlow();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(30));
        var reader = engine.Submit(Slow, deadline.Token);
        var tokens = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var e in reader.ReadAllAsync()) if (e is TokensGenerated) tokens++;
        });
        Assert.True(tokens < 150);
        await WaitUntil(() => engine.Status is { SlotsInUse: 0, Running: 0 });
        Assert.Equal(0, engine.Status.SlotsInUse);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (!condition() && DateTime.UtcNow < until) await Task.Delay(5);
    }
}
