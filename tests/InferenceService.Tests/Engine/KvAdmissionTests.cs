using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Tests.Engine;

/// <summary>Admission is bounded by the tokens sequences hold, not by whole-context slots.</summary>
public sealed class KvAdmissionTests(TestModel model) : IClassFixture<TestModel>
{
    [Fact]
    public async Task Short_sequences_run_together_beyond_what_whole_context_slots_would_admit()
    {
        // 0.5 MiB holds 1024 tokens of this model, four whole-context (256-token) slots. Eight requests of 16 + 40
        // tokens (one 64-token page each) all fit at once.
        using var engine = model.Start(o => { o.KvCacheBudgetMiB = 0.5; o.MaxBatchSize = 8; o.PrefixCaching = false; });
        Assert.Equal(1024, engine.Status.KvTokenBudget);
        await engine.GenerateAsync(new GenerationRequest { PromptTokenIds = TestModel.Prompt(16, 699), MaxNewTokens = 2 }); // warm-up
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => engine.GenerateAsync(new GenerationRequest
        {
            PromptTokenIds = TestModel.Prompt(16, 700 + i), Sampling = SamplingParameters.Greedy, MaxNewTokens = 40, IgnoreEos = true,
        })));
        // All eight ran at once (four whole-context slots would have held four).
        await Task.Delay(50); // the status is published after the step that ended the last request
        Assert.Equal(8, engine.Status.PeakRunning);
        Assert.All(results, r => Assert.Equal(40, r.Sequences[0].TokenIds.Length));
        Assert.Equal(0, engine.Status.Preemptions);
    }

    [Fact]
    public async Task When_the_tokens_held_outgrow_the_budget_the_newest_sequence_is_preempted_and_finishes_unchanged()
    {
        // 256 tokens of budget: two requests of 8 + 150 tokens each grow past 128 held tokens apiece; the newer one is
        // preempted, recomputed when the older ends, and gives the tokens it gives alone.
        var requests = Enumerable.Range(0, 2).Select(i => new GenerationRequest
        {
            PromptTokenIds = TestModel.Prompt(8, 710 + i), Sampling = SamplingParameters.Greedy, MaxNewTokens = 150, IgnoreEos = true,
        }).ToArray();
        using var engine = model.Start(o => { o.KvCacheBudgetMiB = 0.125; o.PrefixCaching = false; });
        var alone = new List<int[]>();
        foreach (var r in requests) alone.Add((await engine.GenerateAsync(r)).Sequences[0].TokenIds);
        var together = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r)));
        Assert.True(engine.Status.Preemptions >= 1, $"a sequence was preempted: {engine.Status}");
        Assert.Equal(alone, together.Select(t => t.Sequences[0].TokenIds));
        await Task.Delay(50);
        Assert.Equal(0, engine.Status.KvTokensHeld);
    }

    [Fact]
    public void Beams_whose_prompt_copies_cannot_fit_in_the_budget_together_are_refused_naming_the_field()
    {
        // 256 tokens of budget: four beams of a 100-token prompt need 4 × 128 (whole pages).
        using var engine = model.Start(o => o.KvCacheBudgetMiB = 0.125);
        var error = Assert.Throws<InvalidRequestException>(() => engine.Submit(new GenerationRequest
        {
            PromptTokenIds = TestModel.Prompt(100, 720), MaxNewTokens = 4, BeamSearch = new BeamSearchParameters(4),
        }));
        Assert.Equal("beam_search.num_beams", error.Field);
        Assert.Contains("do not fit in the KV cache (256 tokens)", error.Message);
    }
}
