using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Tests.Sampling;

/// <summary>
/// The sampler's partial selections (arg-max, top-k, a growing top-p nucleus) choose what a plain implementation
/// chooses (<see cref="Reference"/>: the whole vocabulary sorted, with the same floating-point arithmetic for the
/// probabilities) on realistic vocabulary sizes, for the same random stream; masked (−∞) tokens are never chosen;
/// asking for a log-probability does not change the choice.
/// </summary>
public sealed class SamplerReferenceTests
{
    public static TheoryData<string> Settings => [.. Cases.Keys];

    private static readonly Dictionary<string, SamplingParameters> Cases = new()
    {
        ["greedy"] = SamplingParameters.Greedy,
        ["top_k 40"] = new() { TopK = 40 },
        ["top_p 0.9"] = new() { TopP = 0.9f },
        ["top_p 0.95, temperature 1.3"] = new() { TopP = 0.95f, Temperature = 1.3f },
        ["top_p 0.5, flat"] = new() { TopP = 0.5f, Temperature = 4f },
        ["top_k 50, top_p 0.8"] = new() { TopK = 50, TopP = 0.8f },
        ["min_p 0.05, top_p 0.9"] = new() { MinP = 0.05f, TopP = 0.9f },
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public void Chooses_the_token_a_full_sort_reference_chooses(string setting)
    {
        var p = Cases[setting];
        foreach (var (vocab, rows) in new[] { (32_000, 4), (151_936, 1) })
        {
            var sampler = new TokenSampler(vocab);
            for (var row = 0; row < rows; row++)
            {
                var (logits, order) = Rows.GetOrAdd((vocab, row), key => Row(key.Vocab, key.Row));
                var reference = Reference(logits, order, p);
                var ours = new SeededRandom((ulong)row);
                var theirs = new SeededRandom((ulong)row);
                for (var draw = 0; draw < 10; draw++)
                {
                    var expected = reference(theirs);
                    var chosen = sampler.Sample(logits, p, null, ours, [], logprob: draw % 2 == 0);
                    Assert.Equal(expected, chosen.TokenId);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Settings))]
    public void Never_chooses_a_masked_token(string setting)
    {
        var p = Cases[setting];
        const int vocab = 32_000;
        var sampler = new TokenSampler(vocab);
        for (var row = 0; row < 8; row++)
        {
            var logits = Logits(vocab, 100 + row);
            // Mask everything but a handful of tokens, the most likely ones included.
            var allowed = new HashSet<int> { 7, 1234, 31_999, 20_000 + row };
            for (var t = 0; t < vocab; t++) if (!allowed.Contains(t)) logits[t] = float.NegativeInfinity;
            var rng = new SeededRandom((ulong)row);
            for (var draw = 0; draw < 20; draw++)
                Assert.Contains(sampler.Sample(logits, p, null, rng, []).TokenId, allowed);
        }
    }

    [Fact]
    public void The_log_probability_is_computed_only_when_asked_for_and_leaves_the_choice_unchanged()
    {
        var logits = Logits(32_000, 7);
        var p = new SamplingParameters { TopP = 0.9f, Seed = 3 };
        var sampler = new TokenSampler(logits.Length);
        var with = sampler.Sample(logits, p, null, new SeededRandom(3), []);
        var without = sampler.Sample(logits, p, null, new SeededRandom(3), [], logprob: false);
        Assert.Equal(with.TokenId, without.TokenId);
        Assert.Equal(0f, without.Logprob);
        var lse = Math.Log(logits.Sum(l => Math.Exp(l)));
        Assert.Equal(logits[with.TokenId] - lse, with.Logprob, 3);
    }

    /// <summary>A model-like row: mostly small logits, a few large ones, some exact ties among the large.</summary>
    private static float[] Logits(int vocab, int seed)
    {
        var random = new Random(seed);
        var logits = new float[vocab];
        for (var i = 0; i < vocab; i++)
        {
            // Box-Muller normal, scale 2.
            var u = 1 - random.NextDouble();
            logits[i] = (float)(2 * Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * random.NextDouble()));
        }
        for (var i = 0; i < 30; i++) logits[random.Next(vocab)] = 8 + random.Next(6) * 0.5f;
        return logits;
    }

    /// <summary>Logit rows and their sorted order, shared by the settings (sorting 150k ids takes a while).</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int Vocab, int Row), (float[] Logits, int[] Order)> Rows = new();

    private static (float[], int[]) Row(int vocab, int seed)
    {
        var logits = Logits(vocab, seed);
        return (logits, DescendingOrder(logits));
    }

    /// <summary>Every token id by descending logit, ties by lower id first.</summary>
    private static int[] DescendingOrder(float[] logits)
    {
        var ids = Enumerable.Range(0, logits.Length).ToArray();
        Array.Sort(ids, (a, b) => logits[a] != logits[b] ? logits[b].CompareTo(logits[a]) : a.CompareTo(b));
        return ids;
    }

    /// <summary>
    /// The plain algorithm over the whole sorted vocabulary: the first k, exp((s − max) / T) of each, the nucleus cut
    /// at top_p of the whole vocabulary's mass, min-p, one uniform draw. The arithmetic is the sampler's (float exp per
    /// candidate, sums in double; the vocabulary's mass by the vectorised sum), so only the selection differs.
    /// </summary>
    private static Func<SeededRandom, int> Reference(float[] logits, int[] order, SamplingParameters p)
    {
        var vocab = logits.Length;
        if (p.IsGreedy) return _ => order[0];
        var max = logits[order[0]];
        var ids = p.TopK > 0 && p.TopK < vocab ? order[..p.TopK] : order;
        var probs = ids.Select(t => MathF.Exp((logits[t] - max) * (1f / p.Temperature))).ToArray();
        double total = 0;
        foreach (var q in probs) total += q;
        var n = ids.Length;
        if (p.TopP < 1f)
        {
            var threshold = p.TopP * (p.TopK > 0 ? total : VocabularyMass(logits, 1f / p.Temperature));
            double cumulative = 0;
            for (var i = 0; i < n; i++)
            {
                cumulative += probs[i];
                if (cumulative >= threshold) { n = i + 1; break; }
            }
            total = cumulative;
        }
        if (p.MinP > 0f)
        {
            total = 0;
            for (var i = 0; i < n; i++)
            {
                if (probs[i] < p.MinP) probs[i] = 0;
                total += probs[i];
            }
        }
        return rng =>
        {
            var u = rng.NextDouble() * total;
            double acc = 0;
            for (var i = 0; i < n; i++)
            {
                acc += probs[i];
                if (u < acc && probs[i] > 0) return ids[i];
            }
            return ids[Array.FindLastIndex(probs, n - 1, n, q => q > 0)];
        };
    }

    private static double VocabularyMass(float[] logits, float invT)
    {
        var e = new float[logits.Length];
        System.Numerics.Tensors.TensorPrimitives.Subtract(logits, System.Numerics.Tensors.TensorPrimitives.Max(logits), e);
        System.Numerics.Tensors.TensorPrimitives.Multiply(e, invT, e);
        System.Numerics.Tensors.TensorPrimitives.Exp(e, e);
        return System.Numerics.Tensors.TensorPrimitives.Sum(e);
    }
}
