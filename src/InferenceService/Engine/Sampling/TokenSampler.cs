using System.Numerics.Tensors;

namespace ChatServices.InferenceService.Engine.Sampling;

/// <summary>A chosen token and its log-probability under the (penalised) model distribution.</summary>
public readonly record struct SampledToken(int TokenId, float Logprob);

/// <summary>A candidate token and its log-probability, for top-logprobs.</summary>
public readonly record struct TokenLogprob(int TokenId, float Logprob);

/// <summary>
/// Turns one row of logits into a token: penalties, then greedy arg-max or temperature → top-k → softmax →
/// top-p → min-p → a draw from the request's random stream. Log-probabilities are those of the penalised
/// logits before temperature and truncation (what the model assigns), so they do not depend on sampling settings.
/// Allocation-free per token: every buffer is sized to the vocabulary once and reused (one sampler per engine
/// thread; not thread-safe).
/// </summary>
public sealed class TokenSampler
{
    private readonly float[] _scores;
    private readonly int[] _candidates;
    private readonly float[] _probs;
    private readonly float[] _sortKeys;

    public TokenSampler(int vocabSize)
    {
        _sortKeys = new float[vocabSize];
        _scores = new float[vocabSize];
        _candidates = new int[vocabSize];
        _probs = new float[vocabSize];
    }

    public int VocabSize => _scores.Length;

    /// <summary>
    /// Chooses the next token. <paramref name="topLogprobs"/> receives the most likely tokens (as many as it holds,
    /// most likely first); pass an empty span when not asked for.
    /// </summary>
    public SampledToken Sample(ReadOnlySpan<float> logits, SamplingParameters p, TokenHistory? history, SeededRandom rng, Span<TokenLogprob> topLogprobs)
    {
        var scores = _scores.AsSpan();
        logits.CopyTo(scores);
        if (history is not null && p.HasPenalties) ApplyPenalties(scores, p, history);

        var logSumExp = LogSumExp(scores, _probs);
        if (!topLogprobs.IsEmpty) FillTopLogprobs(scores, logSumExp, topLogprobs);

        var token = p.IsGreedy ? ArgMax(scores) : Draw(scores, p, rng);
        return new SampledToken(token, scores[token] - logSumExp);
    }

    /// <summary>Log-softmax of the logits into <paramref name="destination"/> (beam search scores every token).</summary>
    public static void LogSoftmax(ReadOnlySpan<float> logits, Span<float> destination)
    {
        var lse = LogSumExp(logits, destination);
        TensorPrimitives.Subtract(logits, lse, destination);
    }

    private static void ApplyPenalties(Span<float> scores, SamplingParameters p, TokenHistory history)
    {
        if (p.RepetitionPenalty != 1f)
            foreach (var t in history.Seen)
                scores[t] = scores[t] > 0 ? scores[t] / p.RepetitionPenalty : scores[t] * p.RepetitionPenalty;
        if (p.PresencePenalty != 0f || p.FrequencyPenalty != 0f)
            foreach (var (t, count) in history.GeneratedCounts)
                scores[t] -= p.PresencePenalty + p.FrequencyPenalty * count;
    }

    /// <summary>Index of the highest score; the first (lowest token id) among equals.</summary>
    public static int ArgMax(ReadOnlySpan<float> scores) => TensorPrimitives.IndexOfMax(scores);

    /// <summary>log Σ exp(scores), vectorised (SIMD over the whole vocabulary); <paramref name="scratch"/> ≥ scores.</summary>
    private static float LogSumExp(ReadOnlySpan<float> scores, Span<float> scratch)
    {
        var max = TensorPrimitives.Max(scores);
        var exp = scratch[..scores.Length];
        TensorPrimitives.Subtract(scores, max, exp);
        TensorPrimitives.Exp(exp, exp);
        return max + MathF.Log(TensorPrimitives.Sum(exp));
    }

    private void FillTopLogprobs(ReadOnlySpan<float> scores, float logSumExp, Span<TokenLogprob> top)
    {
        var k = Math.Min(top.Length, scores.Length);
        var idx = _candidates.AsSpan(0, scores.Length);
        for (var i = 0; i < idx.Length; i++) idx[i] = i;
        SelectTop(idx, scores, k);
        SortByScoreDescending(idx[..k], scores);
        for (var i = 0; i < k; i++) top[i] = new TokenLogprob(idx[i], scores[idx[i]] - logSumExp);
    }

    private int Draw(Span<float> scores, SamplingParameters p, SeededRandom rng)
    {
        var vocab = scores.Length;
        var invT = 1f / p.Temperature;
        var n = vocab;
        var idx = _candidates.AsSpan(0, vocab);
        for (var i = 0; i < vocab; i++) idx[i] = i;
        if (p.TopK > 0 && p.TopK < vocab)
        {
            SelectTop(idx, scores, p.TopK);
            n = p.TopK;
        }
        var cand = idx[..n];
        var sorted = false;
        if (p.TopP < 1f || p.TopK > 0)
        {
            // Nucleus truncation needs candidates in descending order; k candidates are few, so sort them too.
            SortByScoreDescending(cand, scores);
            sorted = true;
        }

        var probs = _probs.AsSpan(0, n);
        double total;
        if (!sorted && n == vocab)
        {
            // Every token is a candidate, in id order: exp((s - max) / T) over the whole vocabulary with SIMD.
            var max = TensorPrimitives.Max(scores);
            TensorPrimitives.Subtract(scores, max, probs);
            TensorPrimitives.Multiply(probs, invT, probs);
            TensorPrimitives.Exp(probs, probs);
            total = TensorPrimitives.Sum(probs);
        }
        else
        {
            var max = float.NegativeInfinity;
            foreach (var t in cand) if (scores[t] > max) max = scores[t];
            total = 0;
            for (var i = 0; i < n; i++)
            {
                probs[i] = MathF.Exp((scores[cand[i]] - max) * invT);
                total += probs[i];
            }
        }

        if (p.TopP < 1f && sorted)
        {
            var threshold = p.TopP * total;
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
            // The most likely candidate has probability exp(0) = 1 relative to max: drop those below min_p.
            double kept = 0;
            for (var i = 0; i < n; i++)
            {
                if (probs[i] < p.MinP) probs[i] = 0f;
                kept += probs[i];
            }
            total = kept;
        }

        var u = rng.NextDouble() * total;
        double acc = 0;
        for (var i = 0; i < n; i++)
        {
            acc += probs[i];
            if (u < acc && probs[i] > 0f) return cand[i];
        }
        // Rounding can leave u just above the last sum: take the last candidate still in play.
        for (var i = n - 1; i >= 0; i--) if (probs[i] > 0f) return cand[i];
        return cand[0];
    }

    /// <summary>Partial selection (quickselect): afterwards idx[..k] hold the k highest-scoring token ids, unordered.</summary>
    private static void SelectTop(Span<int> idx, ReadOnlySpan<float> scores, int k)
    {
        int lo = 0, hi = idx.Length - 1;
        while (lo < hi)
        {
            var pivot = scores[idx[(lo + hi) >>> 1]];
            int i = lo, j = hi;
            while (i <= j)
            {
                while (Better(scores, idx[i], pivot)) i++;
                while (Better(scores, pivot, idx[j])) j--;
                if (i <= j) { (idx[i], idx[j]) = (idx[j], idx[i]); i++; j--; }
            }
            if (k - 1 <= j) hi = j;
            else if (k - 1 >= i) lo = i;
            else break;
        }
    }

    private static bool Better(ReadOnlySpan<float> scores, int token, float pivot) => scores[token] > pivot;
    private static bool Better(ReadOnlySpan<float> scores, float pivot, int token) => pivot > scores[token];

    /// <summary>Insertion sort for short runs, descending by score, ties by lower token id (deterministic).</summary>
    private void SortByScoreDescending(Span<int> idx, ReadOnlySpan<float> scores)
    {
        if (idx.Length > 64)
        {
            var keys = _sortKeys.AsSpan(0, idx.Length);
            for (var i = 0; i < idx.Length; i++) keys[i] = -scores[idx[i]];
            // Span sorting is introsort (unstable): equal scores are put back in token-id order afterwards.
            keys.Sort(idx);
            FixTies(idx, scores);
            return;
        }
        for (var i = 1; i < idx.Length; i++)
        {
            var t = idx[i];
            var j = i - 1;
            while (j >= 0 && (scores[idx[j]] < scores[t] || (scores[idx[j]] == scores[t] && idx[j] > t)))
            {
                idx[j + 1] = idx[j];
                j--;
            }
            idx[j + 1] = t;
        }
    }

    private static void FixTies(Span<int> idx, ReadOnlySpan<float> scores)
    {
        var start = 0;
        for (var i = 1; i <= idx.Length; i++)
        {
            if (i < idx.Length && scores[idx[i]] == scores[idx[start]]) continue;
            if (i - start > 1) idx[start..i].Sort();
            start = i;
        }
    }
}
