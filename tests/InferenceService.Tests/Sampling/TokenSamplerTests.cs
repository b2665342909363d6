using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Tests.Sampling;

/// <summary>The sampler's choices against distributions computed by hand.</summary>
public sealed class TokenSamplerTests
{
    private static readonly float[] Logits = [1f, 3f, 2f, 3f, -1f, 0.5f];

    private static int Pick(SamplingParameters p, ulong seed = 1, TokenHistory? history = null) =>
        new TokenSampler(Logits.Length).Sample(Logits, p, history, new SeededRandom(seed), []).TokenId;

    [Fact]
    public void Greedy_takes_the_arg_max_and_breaks_ties_to_the_lower_id() => Assert.Equal(1, Pick(SamplingParameters.Greedy));

    [Fact]
    public void Top_k_of_one_and_a_tiny_top_p_are_greedy()
    {
        for (ulong seed = 0; seed < 50; seed++)
        {
            Assert.Equal(1, Pick(new SamplingParameters { TopK = 1 }, seed));
            Assert.Equal(1, Pick(new SamplingParameters { TopP = 0.01f }, seed));
        }
    }

    [Fact]
    public void Temperature_sampling_follows_the_softmax_distribution()
    {
        var sampler = new TokenSampler(Logits.Length);
        var rng = new SeededRandom(123);
        var counts = new int[Logits.Length];
        const int draws = 40000;
        for (var i = 0; i < draws; i++) counts[sampler.Sample(Logits, new SamplingParameters { Temperature = 1f }, null, rng, []).TokenId]++;
        var z = Logits.Sum(l => Math.Exp(l));
        for (var t = 0; t < Logits.Length; t++)
            Assert.InRange(counts[t] / (double)draws, Math.Exp(Logits[t]) / z - 0.01, Math.Exp(Logits[t]) / z + 0.01);
    }

    [Fact]
    public void Top_k_and_min_p_never_pick_excluded_tokens()
    {
        for (ulong seed = 0; seed < 300; seed++)
        {
            Assert.Contains(Pick(new SamplingParameters { TopK = 3, Temperature = 5f }, seed), new[] { 1, 2, 3 });
            // min_p 0.3: keeps tokens with p >= 0.3 p_max, i.e. logit >= 3 + ln 0.3 ≈ 1.8: ids 1, 2, 3.
            Assert.Contains(Pick(new SamplingParameters { MinP = 0.3f }, seed), new[] { 1, 2, 3 });
        }
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_reaching_the_mass()
    {
        // p(1) = p(3) ≈ 0.377 each, together ≈ 0.754: top_p 0.7 keeps exactly tokens 1 and 3.
        var seen = new HashSet<int>();
        for (ulong seed = 0; seed < 300; seed++) seen.Add(Pick(new SamplingParameters { TopP = 0.7f }, seed));
        Assert.Equal(new HashSet<int> { 1, 3 }, seen);
    }

    [Fact]
    public void Penalties_lower_the_logits_of_tokens_already_seen()
    {
        var history = new TokenHistory([1]);
        history.AddGenerated(3);
        // Repetition penalty 2 halves the positive logits of 1 and 3 (to 1.5): token 2 (logit 2) wins.
        Assert.Equal(2, Pick(SamplingParameters.Greedy with { RepetitionPenalty = 2f }, history: history));
        // Presence penalty hits generated tokens only: 3 drops to 2.5 and 1 (prompt) stays on top.
        Assert.Equal(1, Pick(SamplingParameters.Greedy with { PresencePenalty = 0.5f }, history: history));
    }

    [Fact]
    public void Logprobs_are_the_log_softmax_and_top_logprobs_are_sorted()
    {
        var top = new TokenLogprob[3];
        var chosen = new TokenSampler(Logits.Length).Sample(Logits, SamplingParameters.Greedy, null, new SeededRandom(1), top);
        var lse = Math.Log(Logits.Sum(l => Math.Exp(l)));
        Assert.Equal(3 - lse, chosen.Logprob, 5);
        Assert.Equal([1, 3, 2], top.Select(t => t.TokenId));
        Assert.Equal(2 - lse, top[2].Logprob, 5);
    }

    [Fact]
    public void The_same_seed_gives_the_same_stream()
    {
        var a = new SeededRandom(99);
        var b = new SeededRandom(99);
        for (var i = 0; i < 100; i++) Assert.Equal(a.NextUInt64(), b.NextUInt64());
        Assert.NotEqual(SeededRandom.Derive(5, 0), SeededRandom.Derive(5, 1));
    }
}
