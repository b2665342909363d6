using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace ChatServices.InferenceBench;

/// <summary>The log-probability a model gives each next token of a text, and its arg-max there.</summary>
public sealed record TokenScores(float[] LogProbs, int[] ArgMax);

/// <summary>
/// Teacher-forced scoring of a token sequence with a built model.onnx (all-position logits, GroupQueryAttention
/// convention): one prefill of the whole text, no cache carried over; position t scores token t + 1.
/// </summary>
public sealed class TeacherForcedScorer : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _pastNames;
    private readonly int[] _pastShape; // [1, kv_heads, 0, head_dim]

    public TeacherForcedScorer(string modelFolder, int threads = 2)
    {
        using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 };
        _session = new InferenceSession(Path.Combine(modelFolder, "model.onnx"), options);
        _pastNames = _session.InputMetadata.Keys.Where(n => n.StartsWith("past_key_values.", StringComparison.Ordinal)).ToArray();
        var dims = _session.InputMetadata[_pastNames[0]].Dimensions;
        _pastShape = [1, dims[1], 0, dims[3]];
    }

    public TokenScores Score(int[] tokens)
    {
        var length = tokens.Length;
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(tokens.Select(t => (long)t).ToArray(), [1, length])),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(Enumerable.Repeat(1L, length).ToArray(), [1, length])),
        };
        foreach (var name in _pastNames) inputs.Add(NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(_pastShape)));
        using var results = _session.Run(inputs, ["logits"]);
        var logits = results[0].AsTensor<float>();
        if (logits.Dimensions[1] != length)
            throw new InvalidOperationException("The model returns logits for the last position only; score a build with all-position logits.");
        var vocab = logits.Dimensions[2];
        var flat = logits.ToArray();
        var logProbs = new float[length - 1];
        var argMax = new int[length - 1];
        for (var t = 0; t < length - 1; t++)
        {
            var row = flat.AsSpan(t * vocab, vocab);
            var max = float.NegativeInfinity;
            var best = 0;
            for (var v = 0; v < vocab; v++) if (row[v] > max) { max = row[v]; best = v; }
            double sum = 0;
            foreach (var x in row) sum += Math.Exp(x - max);
            logProbs[t] = (float)(row[tokens[t + 1]] - max - Math.Log(sum));
            argMax[t] = best;
        }
        return new TokenScores(logProbs, argMax);
    }

    public void Dispose() => _session.Dispose();
}

/// <summary>How far a quantized model's teacher-forced scores are from the float32 model's on the same text.</summary>
public sealed record AccuracyResult(double MeanAbsDelta, double MaxAbsDelta, double Top1Agreement, double Perplexity, double ReferencePerplexity)
{
    public static AccuracyResult Compare(TokenScores reference, TokenScores candidate)
    {
        double sum = 0, max = 0, agree = 0, nll = 0, referenceNll = 0;
        var n = reference.LogProbs.Length;
        for (var t = 0; t < n; t++)
        {
            var delta = Math.Abs(reference.LogProbs[t] - candidate.LogProbs[t]);
            sum += delta;
            max = Math.Max(max, delta);
            if (reference.ArgMax[t] == candidate.ArgMax[t]) agree++;
            nll -= candidate.LogProbs[t];
            referenceNll -= reference.LogProbs[t];
        }
        return new AccuracyResult(sum / n, max, agree / n, Math.Exp(nll / n), Math.Exp(referenceNll / n));
    }
}
