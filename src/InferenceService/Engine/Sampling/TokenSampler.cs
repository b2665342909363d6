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
/// Work is only what the request asks for: greedy is one arg-max pass over the logits as they are (no copy unless
/// penalties change them); top-k and top-p select their candidates by partial selection and sort only those; the
/// log-softmax over the vocabulary runs only when a log-probability is wanted. A logit of −∞ (a masked token) is
/// never chosen while any token is finite.
/// Allocation-free per token: every buffer is sized to the vocabulary once and reused (one sampler per engine
/// thread; not thread-safe).
/// </summary>
public sealed class TokenSampler
{
    /// <summary>The first nucleus tried for top-p without top-k; grown fourfold until it holds the mass asked for.</summary>
    private const int FirstNucleus = 64;

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
    /// most likely first); pass an empty span when not asked for. With <paramref name="logprob"/> false and no top
    /// logprobs, the chosen token's log-probability is not computed (reported as 0) and no log-softmax runs.
    /// </summary>
    public SampledToken Sample(ReadOnlySpan<float> logits, SamplingParameters p, TokenHistory? history, SeededRandom rng,
        Span<TokenLogprob> topLogprobs, bool logprob = true)
    {
        var scores = logits;
        if (history is not null && p.HasPenalties)
        {
            logits.CopyTo(_scores);
            ApplyPenalties(_scores, p, history);
            scores = _scores;
        }

        var token = p.IsGreedy ? ArgMax(scores) : Draw(scores, p, rng);
        if (!logprob && topLogprobs.IsEmpty) return new SampledToken(token, 0f);
        var logSumExp = LogSumExp(scores, _probs);
        if (!topLogprobs.IsEmpty) FillTopLogprobs(scores, logSumExp, topLogprobs);
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
        var idx = _candidates.AsSpan(0, k);
        SelectTopSorted(scores, idx);
        for (var i = 0; i < k; i++) top[i] = new TokenLogprob(idx[i], scores[idx[i]] - logSumExp);
    }

    private int Draw(ReadOnlySpan<float> scores, SamplingParameters p, SeededRandom rng)
    {
        var vocab = scores.Length;
        var invT = 1f / p.Temperature;
        var idx = _candidates.AsSpan(0, vocab);
        int n;
        double total;
        if (p.TopK > 0 && p.TopK < vocab)
        {
            // The k best by partial selection, then only those sorted (nucleus truncation needs descending order).
            n = p.TopK;
            SelectTopSorted(scores, idx[..n]);
            total = CandidateProbabilities(scores, idx[..n], invT);
            if (p.TopP < 1f) n = NucleusCut(n, p.TopP * total, ref total);
        }
        else if (p.TopP < 1f)
        {
            n = Nucleus(scores, p.TopP, invT, idx, out total);
        }
        else
        {
            // Every token is a candidate, in id order: exp((s - max) / T) over the whole vocabulary with SIMD.
            FillIds(idx);
            total = ScaledExp(scores, invT, _probs);
            n = vocab;
        }
        var probs = _probs.AsSpan(0, n);
        var cand = idx[..n];

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

    /// <summary>
    /// Top-p without top-k: the smallest set of most likely tokens whose probability reaches <paramref name="topP"/>.
    /// The mass of the whole vocabulary is one SIMD pass. A peaked distribution's nucleus lies within the best 64
    /// (one heap pass); otherwise a histogram of the mass by logit finds the logit above which the nucleus lies, and
    /// only the tokens above it are sorted. Leaves the nucleus in idx[..n] (descending) with its probabilities in
    /// _probs[..n]; returns n.
    /// </summary>
    private int Nucleus(ReadOnlySpan<float> scores, float topP, float invT, Span<int> idx, out double total)
    {
        var vocab = scores.Length;
        // The whole vocabulary's probabilities go to _sortKeys (free until the nucleus is sorted): _probs receives
        // the candidates' below, and the histogram reads these.
        var threshold = topP * ScaledExp(scores, invT, _sortKeys);
        var m = Math.Min(FirstNucleus, vocab);
        if (m * 8 <= vocab)
        {
            SelectTopSorted(scores, idx[..m]);
            total = CandidateProbabilities(scores, idx[..m], invT);
            var n = NucleusCut(m, threshold, ref total);
            // Done when the cut lies before the selection's last score: tokens tied with it outside the selection
            // would otherwise be missing from the order.
            if (n < m && scores[idx[n - 1]] > scores[idx[m - 1]]) return n;
            m = CandidatesAboveMassCut(scores, threshold, invT, idx);
        }
        else
        {
            m = vocab;
            FillIds(idx);
        }
        SortByScoreDescending(idx[..m], scores);
        total = CandidateProbabilities(scores, idx[..m], invT);
        var cut = NucleusCut(m, threshold, ref total);
        if (cut < m || m == vocab) return cut;
        // Rounding left the candidates just short of the mass: take the whole vocabulary.
        FillIds(idx);
        SortByScoreDescending(idx, scores);
        total = CandidateProbabilities(scores, idx, invT);
        return NucleusCut(vocab, threshold, ref total);
    }

    /// <summary>
    /// Puts into idx every token whose logit is at or above a bin edge below which less than 1 − top_p of the mass
    /// lies (one bin of margin), using the probabilities ScaledExp left in _sortKeys; returns their count. Bins split
    /// the logits within 104 / T of the maximum (below that exp underflows to 0), so ties always share a bin.
    /// </summary>
    private int CandidatesAboveMassCut(ReadOnlySpan<float> scores, double threshold, float invT, Span<int> idx)
    {
        const int bins = 1024;
        Span<double> mass = stackalloc double[bins];
        mass.Clear();
        var max = TensorPrimitives.Max(scores);
        var perBin = bins * invT / 104f;
        var probs = _sortKeys.AsSpan(0, scores.Length);
        for (var t = 0; t < scores.Length; t++)
        {
            var bin = (max - scores[t]) * perBin;
            if (bin < bins) mass[(int)bin] += probs[t];
        }
        var last = bins - 1;
        double cumulative = 0;
        for (var b = 0; b < bins; b++)
        {
            cumulative += mass[b];
            if (cumulative >= threshold) { last = Math.Min(b + 1, bins - 1); break; }
        }
        var count = 0;
        for (var t = 0; t < scores.Length; t++)
            if ((max - scores[t]) * perBin < last + 1) idx[count++] = t;
        return count;
    }

    /// <summary>exp((s − max) / T) of each candidate (sorted: the first is the max), in order, into _probs; returns their sum.</summary>
    private double CandidateProbabilities(ReadOnlySpan<float> scores, ReadOnlySpan<int> cand, float invT)
    {
        var max = scores[cand[0]];
        var probs = _probs.AsSpan(0, cand.Length);
        double total = 0;
        for (var i = 0; i < cand.Length; i++)
        {
            probs[i] = MathF.Exp((scores[cand[i]] - max) * invT);
            total += probs[i];
        }
        return total;
    }

    /// <summary>
    /// The first n sorted candidates whose probabilities (in _probs) reach <paramref name="threshold"/>;
    /// <paramref name="total"/> becomes their sum. All <paramref name="count"/> when they do not reach it.
    /// </summary>
    private int NucleusCut(int count, double threshold, ref double total)
    {
        double cumulative = 0;
        for (var i = 0; i < count; i++)
        {
            cumulative += _probs[i];
            if (cumulative >= threshold) { total = cumulative; return i + 1; }
        }
        total = cumulative;
        return count;
    }

    /// <summary>exp((s − max) / T) over the whole vocabulary into <paramref name="destination"/> (SIMD); returns the sum.</summary>
    private static double ScaledExp(ReadOnlySpan<float> scores, float invT, Span<float> destination)
    {
        var probs = destination[..scores.Length];
        TensorPrimitives.Subtract(scores, TensorPrimitives.Max(scores), probs);
        TensorPrimitives.Multiply(probs, invT, probs);
        TensorPrimitives.Exp(probs, probs);
        return TensorPrimitives.Sum(probs);
    }

    private static void FillIds(Span<int> idx)
    {
        for (var i = 0; i < idx.Length; i++) idx[i] = i;
    }

    /// <summary>
    /// The <c>top.Length</c> best tokens, best first (ties: lower id first), by one pass over the vocabulary with a
    /// heap of that size: a token below the heap's worst costs one comparison, so k ≪ vocab costs about one read of
    /// the logits. −∞ and NaN logits come last.
    /// </summary>
    private static void SelectTopSorted(ReadOnlySpan<float> scores, Span<int> top)
    {
        var k = top.Length;
        for (var i = 0; i < k; i++) { top[i] = i; SiftUp(top, i, scores); }
        var worst = scores[top[0]];
        for (var t = k; t < scores.Length; t++)
        {
            if (scores[t] < worst || !Worse(scores, top[0], t)) continue;
            top[0] = t;
            SiftDown(top, k, scores);
            worst = scores[top[0]];
        }
        // Heap sort: repeatedly move the worst to the end, giving best first.
        for (var end = k - 1; end > 0; end--)
        {
            (top[0], top[end]) = (top[end], top[0]);
            SiftDown(top, end, scores);
        }
    }

    /// <summary>Heap order: the worst token at the root. Worse: lower score, or an equal score and a higher id; NaN worst.</summary>
    private static bool Worse(ReadOnlySpan<float> scores, int a, int b)
    {
        float x = scores[a], y = scores[b];
        if (float.IsNaN(x) || float.IsNaN(y)) return float.IsNaN(x) && (!float.IsNaN(y) || a > b);
        return x < y || (x == y && a > b);
    }

    private static void SiftUp(Span<int> heap, int i, ReadOnlySpan<float> scores)
    {
        while (i > 0)
        {
            var parent = (i - 1) >> 1;
            if (!Worse(scores, heap[i], heap[parent])) return;
            (heap[i], heap[parent]) = (heap[parent], heap[i]);
            i = parent;
        }
    }

    private static void SiftDown(Span<int> heap, int count, ReadOnlySpan<float> scores)
    {
        var i = 0;
        while (true)
        {
            int left = 2 * i + 1, right = left + 1, worst = i;
            if (left < count && Worse(scores, heap[left], heap[worst])) worst = left;
            if (right < count && Worse(scores, heap[right], heap[worst])) worst = right;
            if (worst == i) return;
            (heap[i], heap[worst]) = (heap[worst], heap[i]);
            i = worst;
        }
    }

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
