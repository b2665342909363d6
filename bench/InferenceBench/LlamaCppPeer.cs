using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;

namespace ChatServices.InferenceBench;

/// <summary>
/// llama.cpp (through LLamaSharp's native API) running a GGUF file that ModelBuilder wrote from the same weights:
/// greedy decoding on token ids, no sampler chain. Several streams share one context as separate sequences and run
/// in one <see cref="LLamaBatch"/> per step — llama.cpp's own batched decoding (what LLamaSharp's BatchedExecutor
/// does underneath). Default context settings otherwise (float16 KV cache).
/// </summary>
public sealed class LlamaCppPeer : IDisposable
{
    private readonly LLamaWeights _weights;
    private readonly ModelParams _parameters;
    private LLamaContext? _scoring;

    public LlamaCppPeer(string ggufPath, int threads, int maxSequences, int contextTokens)
    {
        _parameters = new ModelParams(ggufPath)
        {
            ContextSize = (uint)contextTokens,
            Threads = threads,
            BatchThreads = threads,
            BatchSize = 512,
            UBatchSize = 512,
            SeqMax = (uint)maxSequences,
            GpuLayerCount = 0,
        };
        _weights = LLamaWeights.LoadFromFile(_parameters);
    }

    /// <summary>Greedy continuation of one prompt: the tokens and the decode rate (first to last token).</summary>
    public (int[] Tokens, DecodeRate Rate) Greedy(int[] prompt, int newTokens)
    {
        using var context = _weights.CreateContext(_parameters);
        var batch = new LLamaBatch();
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        var tokens = new int[newTokens];
        long first = 0;
        for (var n = 0; n < newTokens; n++)
        {
            Decode(context, batch);
            tokens[n] = ArgMax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1));
            if (n == 0) first = Stopwatch.GetTimestamp();
            batch.Clear();
            batch.Add(tokens[n], prompt.Length + n, LLamaSeqId.Zero, true);
        }
        var last = Stopwatch.GetTimestamp();
        return (tokens, new DecodeRate(newTokens, Stopwatch.GetElapsedTime(first, last).TotalSeconds, Stopwatch.GetElapsedTime(start, first).TotalMilliseconds));
    }

    /// <summary>
    /// <paramref name="streams"/> greedy requests at once in one context: one batch prefills every prompt, then each
    /// step decodes one token of every sequence. Tokens per second include the prefill, as the engine's figure does.
    /// </summary>
    public LoadResult Streams(int streams, int prompt, int newTokens)
    {
        using var context = _weights.CreateContext(_parameters);
        var batch = new LLamaBatch();
        var clock = Stopwatch.StartNew();
        var rows = new int[streams];
        for (var s = 0; s < streams; s++)
        {
            var ids = Workloads.Prompt(prompt, s * 1000);
            for (var i = 0; i < prompt; i++) batch.Add(ids[i], i, (LLamaSeqId)s, i == prompt - 1);
            rows[s] = batch.TokenCount - 1;
        }
        var ttft = new double[streams];
        for (var n = 0; n < newTokens; n++)
        {
            Decode(context, batch);
            var next = new int[streams];
            for (var s = 0; s < streams; s++) next[s] = ArgMax(context.NativeHandle.GetLogitsIth(rows[s]));
            if (n == 0) Array.Fill(ttft, clock.Elapsed.TotalMilliseconds);
            batch.Clear();
            for (var s = 0; s < streams; s++)
            {
                batch.Add(next[s], prompt + n, (LLamaSeqId)s, true);
                rows[s] = batch.TokenCount - 1;
            }
        }
        return new LoadResult(streams, (long)streams * newTokens, clock.Elapsed.TotalSeconds, ttft);
    }

    /// <summary>Teacher-forced scores of a text (logits at every position), to compare with the float32 ONNX build.</summary>
    public TokenScores Score(int[] tokens)
    {
        // One context for every text scored: clearing its cache is far cheaper than building a context per text.
        var context = _scoring ??= _weights.CreateContext(_parameters);
        context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (var i = 0; i < tokens.Length; i++) batch.Add(tokens[i], i, LLamaSeqId.Zero, true);
        Decode(context, batch);
        var logProbs = new float[tokens.Length - 1];
        var argMax = new int[tokens.Length - 1];
        for (var t = 0; t < tokens.Length - 1; t++)
        {
            var row = context.NativeHandle.GetLogitsIth(t);
            argMax[t] = ArgMax(row);
            var max = row[argMax[t]];
            double sum = 0;
            foreach (var x in row) sum += Math.Exp(x - max);
            logProbs[t] = (float)(row[tokens[t + 1]] - max - Math.Log(sum));
        }
        return new TokenScores(logProbs, argMax);
    }

    private static void Decode(LLamaContext context, LLamaBatch batch)
    {
        var result = context.NativeHandle.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode failed: {result}");
    }

    private static int ArgMax(Span<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    public void Dispose()
    {
        _scoring?.Dispose();
        _weights.Dispose();
    }
}
