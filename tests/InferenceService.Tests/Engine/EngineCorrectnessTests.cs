using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;
using Microsoft.ML.OnnxRuntimeGenAI;

namespace ChatServices.InferenceService.Tests.Engine;

/// <summary>
/// What the engine computes, checked against an independent runtime and against itself under every scheduling
/// path: ONNX Runtime GenAI's greedy search, prefix-cache hits versus cold runs, preemption and recompute,
/// seeded sampling, n samples, beam search and logprobs.
/// </summary>
public sealed class EngineCorrectnessTests(TestModel model) : IClassFixture<TestModel>
{
    private static GenerationRequest Greedy(int[] prompt, int maxNewTokens) => new()
    {
        PromptTokenIds = prompt,
        Sampling = SamplingParameters.Greedy,
        MaxNewTokens = maxNewTokens,
        IgnoreEos = true,
    };

    [Fact]
    public async Task Greedy_tokens_equal_onnx_runtime_genai_greedy_search_on_the_same_folder()
    {
        int[][] prompts = [TestModel.Prompt(6, 11), TestModel.Prompt(50, 12)]; // the second is prefilled in two chunks
        using var engine = model.Start(o => o.PrefixCaching = false);
        var ours = await Task.WhenAll(prompts.Select(p => engine.GenerateAsync(Greedy(p, 20))));

        using var genAi = new Model(model.Path);
        for (var i = 0; i < prompts.Length; i++)
        {
            using var parameters = new GeneratorParams(genAi);
            parameters.SetSearchOption("max_length", prompts[i].Length + 20);
            using var generator = new Generator(genAi, parameters);
            generator.AppendTokens(prompts[i]);
            while (!generator.IsDone()) generator.GenerateNextToken();
            var expected = generator.GetSequence(0).ToArray()[prompts[i].Length..];
            // GenAI stops at the model's end-of-sequence id; compare up to where it stopped.
            Assert.Equal(expected, ours[i].Sequences[0].TokenIds[..expected.Length]);
            Assert.True(expected.Length > 1);
        }
    }

    [Fact]
    public async Task Next_turn_of_a_conversation_reuses_the_cached_history_and_gives_the_cold_output()
    {
        var turn1 = TestModel.Prompt(40, 21);
        using var cached = model.Start(o => o.PrefixCaching = true);
        using var cold = model.Start(o => o.PrefixCaching = false);

        var reply1 = (await cached.GenerateAsync(Greedy(turn1, 15))).Sequences[0].TokenIds;
        int[] turn2 = [.. turn1, .. reply1, .. TestModel.Prompt(12, 22)];
        var warm = await cached.GenerateAsync(Greedy(turn2, 15));
        var reference = await cold.GenerateAsync(Greedy(turn2, 15));

        // The parked slot holds the first turn's prompt and reply, all but the last reply token (never fed).
        Assert.Equal(turn1.Length + reply1.Length - 1, warm.Usage.CachedPromptTokens);
        Assert.Equal(0, reference.Usage.CachedPromptTokens);
        Assert.Equal(reference.Sequences[0].TokenIds, warm.Sequences[0].TokenIds);
        Assert.True(cached.Status.PrefixHits >= 1);
    }

    [Fact]
    public async Task A_shared_system_prompt_is_copied_from_the_cache_and_gives_the_cold_output()
    {
        var system = TestModel.Prompt(48, 31);
        int[] a = [.. system, .. TestModel.Prompt(7, 32)];
        int[] b = [.. system, .. TestModel.Prompt(9, 33)];
        using var cached = model.Start(o => o.PrefixCaching = true);
        using var cold = model.Start(o => o.PrefixCaching = false);

        await cached.GenerateAsync(Greedy(a, 5));
        var warm = await cached.GenerateAsync(Greedy(b, 10));
        var reference = await cold.GenerateAsync(Greedy(b, 10));

        Assert.True(warm.Usage.CachedPromptTokens >= system.Length);
        Assert.Equal(reference.Sequences[0].TokenIds, warm.Sequences[0].TokenIds);
    }

    [Fact]
    public async Task A_prompt_entirely_in_the_cache_recomputes_its_last_token_and_gives_the_same_output()
    {
        var prompt = TestModel.Prompt(30, 41);
        using var engine = model.Start(o => o.PrefixCaching = true);
        var first = await engine.GenerateAsync(Greedy(prompt, 8));
        var again = await engine.GenerateAsync(Greedy(prompt, 8));
        Assert.Equal(prompt.Length - 1, again.Usage.CachedPromptTokens);
        Assert.Equal(first.Sequences[0].TokenIds, again.Sequences[0].TokenIds);
    }

    [Fact]
    public async Task Seeded_sampling_is_reproducible_and_the_seed_matters()
    {
        using var engine = model.Start();
        GenerationRequest Sampled(ulong seed) => new()
        {
            PromptTokenIds = TestModel.Prompt(10, 51),
            Sampling = new SamplingParameters { Temperature = 1.5f, TopK = 100, TopP = 0.95f, MinP = 0.01f, Seed = seed, PresencePenalty = 0.5f, FrequencyPenalty = 0.2f, RepetitionPenalty = 1.1f },
            MaxNewTokens = 30,
            IgnoreEos = true,
        };
        var a = (await engine.GenerateAsync(Sampled(42))).Sequences[0].TokenIds;
        var b = (await engine.GenerateAsync(Sampled(42))).Sequences[0].TokenIds;
        var c = (await engine.GenerateAsync(Sampled(43))).Sequences[0].TokenIds;
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public async Task N_samples_share_the_prompt_differ_from_each_other_and_reproduce_with_a_seed()
    {
        using var engine = model.Start();
        var request = new GenerationRequest
        {
            PromptTokenIds = TestModel.Prompt(20, 61),
            Sampling = new SamplingParameters { Temperature = 1.2f, Seed = 7 },
            MaxNewTokens = 16,
            IgnoreEos = true,
            N = 3,
        };
        var first = await engine.GenerateAsync(request);
        var second = await engine.GenerateAsync(request);
        Assert.Equal(3, first.Sequences.Length);
        Assert.Equal([0, 1, 2], first.Sequences.Select(s => s.Index));
        Assert.Equal(3, first.Sequences.Select(s => string.Join(',', s.TokenIds)).Distinct().Count());
        for (var i = 0; i < 3; i++) Assert.Equal(first.Sequences[i].TokenIds, second.Sequences[i].TokenIds);
        Assert.Equal(48, first.Usage.CompletionTokens);
    }

    [Fact]
    public async Task Beam_search_with_one_beam_equals_greedy()
    {
        using var engine = model.Start();
        var prompt = TestModel.Prompt(12, 71);
        var greedy = await engine.GenerateAsync(Greedy(prompt, 20));
        var beam = await engine.GenerateAsync(Greedy(prompt, 20) with { BeamSearch = new BeamSearchParameters(1) });
        Assert.Single(beam.Sequences);
        Assert.Equal(greedy.Sequences[0].TokenIds, beam.Sequences[0].TokenIds);
    }

    [Fact]
    public async Task Beam_search_returns_num_beams_alternatives_best_first_scoring_at_least_greedy()
    {
        using var engine = model.Start();
        var prompt = TestModel.Prompt(12, 72);
        // A sample's score is its cumulative log-probability when log-probabilities are asked for.
        var greedy = await engine.GenerateAsync(Greedy(prompt, 10) with { Logprobs = true });
        var beam = await engine.GenerateAsync(Greedy(prompt, 10) with { BeamSearch = new BeamSearchParameters(4, LengthPenalty: 1f) });

        Assert.Equal(4, beam.Sequences.Length);
        Assert.Equal(4, beam.Sequences.Select(s => string.Join(',', s.TokenIds)).Distinct().Count());
        for (var i = 1; i < beam.Sequences.Length; i++) Assert.True(beam.Sequences[i - 1].Score >= beam.Sequences[i].Score);
        var greedyScore = greedy.Sequences[0].Score / greedy.Sequences[0].TokenIds.Length;
        Assert.True(beam.Sequences[0].Score >= greedyScore - 1e-4, $"beam {beam.Sequences[0].Score} < greedy {greedyScore}");
        // The engine publishes its status after the step that completed the request: the beams' slots are free then.
        for (var i = 0; i < 200 && engine.Status.SlotsInUse != 0; i++) await Task.Delay(10);
        Assert.Equal(0, engine.Status.SlotsInUse);
    }

    [Fact]
    public async Task Logprobs_report_the_chosen_token_and_the_most_likely_alternatives()
    {
        using var engine = model.Start();
        var reader = engine.Submit(Greedy(TestModel.Prompt(8, 81), 5) with { Logprobs = true, TopLogprobs = 4 });
        var tokens = new List<GeneratedToken>();
        await foreach (var e in reader.ReadAllAsync())
            if (e is TokensGenerated t) tokens.AddRange(t.Tokens);
        Assert.Equal(5, tokens.Count);
        foreach (var t in tokens)
        {
            Assert.NotNull(t.TopLogprobs);
            Assert.Equal(4, t.TopLogprobs!.Length);
            Assert.Equal(t.TokenId, t.TopLogprobs[0].TokenId); // greedy picks the most likely
            Assert.Equal(t.Logprob, t.TopLogprobs[0].Logprob);
            Assert.True(t.Logprob <= 0);
            for (var i = 1; i < 4; i++) Assert.True(t.TopLogprobs[i - 1].Logprob >= t.TopLogprobs[i].Logprob);
        }
    }

    [Fact]
    public async Task Samples_forking_without_room_in_the_kv_budget_preempt_the_newest_request_which_later_finishes_unchanged()
    {
        // 0.125 MiB holds 256 tokens of this model (512 bytes each), counted in pages of 64 tokens per slot: the
        // request of n=2 (90 + 12 tokens: 128) arrives first and prefills over several steps while a later greedy
        // request (6 + 30: 64) runs beside it; the second sample's copy of the prompt (128 more) does not fit, so
        // the later request is preempted, recomputed after, and its output does not change.
        var sampled = new GenerationRequest
        {
            PromptTokenIds = TestModel.Prompt(90, 91),
            Sampling = new SamplingParameters { Temperature = 1f, Seed = 5 },
            MaxNewTokens = 12,
            IgnoreEos = true,
            N = 2,
        };
        var later = Greedy(TestModel.Prompt(6, 92), 30);
        using var engine = model.Start(o => { o.KvCacheBudgetMiB = 0.125; o.PrefixCaching = false; o.PrefillChunkTokens = 16; o.StepTokenBudget = 17; });
        Assert.Equal(256, engine.Status.KvTokenBudget);
        var aloneSampled = await engine.GenerateAsync(sampled);
        var aloneLater = await engine.GenerateAsync(later);

        var both = await Task.WhenAll(engine.GenerateAsync(sampled), engine.GenerateAsync(later));
        Assert.True(engine.Status.Preemptions >= 1, $"the later request was preempted: {engine.Status}");
        Assert.Equal(aloneLater.Sequences[0].TokenIds, both[1].Sequences[0].TokenIds);
        Assert.Equal(aloneSampled.Sequences.Select(s => s.TokenIds), both[0].Sequences.Select(s => s.TokenIds));
    }
}
