using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Engine.BeamSearch;

/// <summary>A finished beam hypothesis: generated tokens and its length-normalised score.</summary>
public sealed record BeamHypothesis(int[] TokenIds, double Score, FinishReason FinishReason);

/// <summary>A beam for the next step: which current beam it extends, with which token, at what cumulative score.</summary>
public readonly record struct BeamChoice(int Parent, int TokenId, double CumulativeLogprob);

/// <summary>
/// Beam search over one request: keeps the num_beams best partial sequences by cumulative log-probability and the
/// best finished hypotheses, scored as sum of log-probabilities / generated_length^length_penalty (the Hugging Face
/// definition). Stops when num_beams hypotheses are finished and either early stopping is on or no running beam can
/// still beat the worst of them, or when the length limit ends every beam. Pure selection: which KV each new beam
/// continues from is applied by the engine (a beam whose parent has another child copies the parent's KV).
/// </summary>
public sealed class BeamSearchState(BeamSearchParameters parameters, int promptLength, int maxNewTokens)
{
    private readonly List<BeamHypothesis> _finished = [];
    private readonly List<(int Beam, int Token, double Score)> _candidates = [];
    private float[] _logprobs = [];

    public BeamSearchParameters Parameters { get; } = parameters;
    public int PromptLength { get; } = promptLength;
    public bool IsDone { get; private set; }

    /// <summary>Finished hypotheses, best first.</summary>
    public IReadOnlyList<BeamHypothesis> Finished => _finished;

    /// <summary>
    /// One step: given each current beam's tokens, cumulative log-probability and logits, chooses the next beams.
    /// <paramref name="isStop"/> says whether a token ends a sequence. Returns the choices (empty when done).
    /// </summary>
    public List<BeamChoice> Step(IReadOnlyList<(IReadOnlyList<int> Tokens, double Cumulative)> beams, Func<int, ReadOnlySpan<float>> logitsOf, Func<int, bool> isStop)
    {
        var k = Parameters.NumBeams;
        _candidates.Clear();
        for (var b = 0; b < beams.Count; b++)
        {
            var logits = logitsOf(b);
            if (_logprobs.Length != logits.Length) _logprobs = new float[logits.Length];
            TokenSampler.LogSoftmax(logits, _logprobs);
            // Each beam can contribute at most 2k useful candidates (k may end in a stop token).
            AddTop(b, beams[b].Cumulative, _logprobs, 2 * k);
        }
        _candidates.Sort((x, y) => y.Score != x.Score ? y.Score.CompareTo(x.Score) : x.Beam != y.Beam ? x.Beam.CompareTo(y.Beam) : x.Token.CompareTo(y.Token));

        var generated = beams[0].Tokens.Count - PromptLength + 1; // length after this step's token
        var next = new List<BeamChoice>(k);
        foreach (var (beam, token, score) in _candidates)
        {
            if (isStop(token))
            {
                AddFinished(beams[beam].Tokens, token, score, generated, FinishReason.Stop);
                continue;
            }
            if (next.Count < k) next.Add(new BeamChoice(beam, token, score));
            if (next.Count == k && _finished.Count >= k) break;
        }

        var atLimit = generated >= maxNewTokens;
        if (atLimit || next.Count == 0)
        {
            foreach (var c in next) AddFinished(beams[c.Parent].Tokens, c.TokenId, c.CumulativeLogprob, generated, FinishReason.Length);
            IsDone = true;
            return [];
        }
        if (_finished.Count >= k)
        {
            var bestRunning = next[0].CumulativeLogprob / Math.Pow(generated, Parameters.LengthPenalty);
            if (Parameters.EarlyStopping || bestRunning <= _finished[^1].Score)
            {
                IsDone = true;
                return [];
            }
        }
        return next;
    }

    private void AddTop(int beam, double cumulative, float[] logprobs, int count)
    {
        // Small k: keep a sorted window of the best `count` tokens (ties to the lower id, as greedy does).
        var start = _candidates.Count;
        for (var t = 0; t < logprobs.Length; t++)
        {
            var score = cumulative + logprobs[t];
            if (double.IsNegativeInfinity(score)) continue; // masked out by a constraint
            var filled = _candidates.Count - start;
            if (filled == count && score <= _candidates[^1].Score) continue;
            var i = _candidates.Count;
            if (filled == count) _candidates.RemoveAt(--i);
            while (i > start && _candidates[i - 1].Score < score) i--;
            _candidates.Insert(i, (beam, t, score));
        }
    }

    private void AddFinished(IReadOnlyList<int> beamTokens, int token, double cumulative, int generated, FinishReason reason)
    {
        var score = cumulative / Math.Pow(generated, Parameters.LengthPenalty);
        var k = Parameters.NumBeams;
        if (_finished.Count >= k && score <= _finished[^1].Score) return;
        var ids = new int[beamTokens.Count - PromptLength + 1];
        for (var i = PromptLength; i < beamTokens.Count; i++) ids[i - PromptLength] = beamTokens[i];
        ids[^1] = token;
        var at = _finished.FindIndex(h => h.Score < score);
        _finished.Insert(at < 0 ? _finished.Count : at, new BeamHypothesis(ids, score, reason));
        if (_finished.Count > k) _finished.RemoveAt(k);
    }
}
