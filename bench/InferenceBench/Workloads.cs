using System.Collections.Concurrent;
using System.Diagnostics;
using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;
using GenAi = Microsoft.ML.OnnxRuntimeGenAI;

namespace ChatServices.InferenceBench;

/// <summary>Tokens generated over a wall-clock interval and each request's time to first token.</summary>
public sealed record LoadResult(int Requests, long Tokens, double Seconds, double[] TtftMs)
{
    public double TokensPerSecond => Tokens / Seconds;
    public double TtftP50 => Percentile(0.50);
    public double TtftP99 => Percentile(0.99);

    private double Percentile(double p)
    {
        if (TtftMs.Length == 0) return double.NaN;
        var sorted = TtftMs.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
    }
}

/// <summary>Decode speed of one stream: time between its first and last token.</summary>
public sealed record DecodeRate(int Tokens, double Seconds, double PrefillMilliseconds)
{
    public double TokensPerSecond => (Tokens - 1) / Seconds;
    public double StepMilliseconds => Seconds * 1000 / (Tokens - 1);
}

/// <summary>The load generators: the same request shapes for the engine and for ONNX Runtime GenAI.</summary>
public static class Workloads
{
    /// <summary>Deterministic prompt tokens in [3, 32000), different for every salt.</summary>
    public static int[] Prompt(int length, int salt)
    {
        var tokens = new int[length];
        var x = (uint)(salt * 2654435761u + 12345);
        for (var i = 0; i < length; i++)
        {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            tokens[i] = 3 + (int)(x % 31997);
        }
        return tokens;
    }

    private static GenerationRequest Greedy(int[] prompt, int newTokens) => new()
    {
        PromptTokenIds = prompt,
        Sampling = SamplingParameters.Greedy,
        MaxNewTokens = newTokens,
    };

    /// <summary>
    /// <paramref name="streams"/> concurrent clients, each sending <paramref name="rounds"/> requests one after the
    /// other; a client stops early when the budget has passed.
    /// </summary>
    public static async Task<LoadResult> Engine(InferenceEngine engine, int streams, int rounds, int prompt, int newTokens, TimeSpan budget)
    {
        var ttft = new ConcurrentBag<double>();
        long tokens = 0;
        var requests = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, streams).Select(s => Task.Run(async () =>
        {
            for (var r = 0; r < rounds && clock.Elapsed < budget; r++)
            {
                var start = Stopwatch.GetTimestamp();
                var first = true;
                await foreach (var e in engine.Submit(Greedy(Prompt(prompt, s * 1000 + r), newTokens)).ReadAllAsync())
                    if (e is TokensGenerated step)
                    {
                        if (first) { ttft.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds); first = false; }
                        Interlocked.Add(ref tokens, step.Tokens.Length);
                    }
                Interlocked.Increment(ref requests);
            }
        })));
        return new LoadResult(requests, tokens, clock.Elapsed.TotalSeconds, [.. ttft]);
    }

    /// <summary>The same load on ONNX Runtime GenAI: one Generator per request, one thread per client.</summary>
    public static LoadResult GenAi(GenAi.Model model, int streams, int rounds, int prompt, int newTokens, TimeSpan budget)
    {
        var ttft = new ConcurrentBag<double>();
        long tokens = 0;
        var requests = 0;
        var clock = Stopwatch.StartNew();
        var threads = Enumerable.Range(0, streams).Select(s => new Thread(() =>
        {
            for (var r = 0; r < rounds && clock.Elapsed < budget; r++)
            {
                var ids = Prompt(prompt, s * 1000 + r);
                var start = Stopwatch.GetTimestamp();
                using var parameters = new GenAi.GeneratorParams(model);
                parameters.SetSearchOption("max_length", prompt + newTokens);
                using var generator = new GenAi.Generator(model, parameters);
                generator.AppendTokens(ids);
                var first = true;
                while (!generator.IsDone())
                {
                    generator.GenerateNextToken();
                    if (first) { ttft.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds); first = false; }
                }
                Interlocked.Add(ref tokens, generator.GetSequence(0).Length - prompt);
                Interlocked.Increment(ref requests);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        return new LoadResult(requests, tokens, clock.Elapsed.TotalSeconds, [.. ttft]);
    }

    public static async Task<DecodeRate> EngineDecodeRate(InferenceEngine engine, int prompt, int newTokens)
    {
        var start = Stopwatch.GetTimestamp();
        long first = 0, last = 0;
        var count = 0;
        await foreach (var e in engine.Submit(Greedy(Prompt(prompt, 777), newTokens) with { IgnoreEos = true }).ReadAllAsync())
            if (e is TokensGenerated step)
            {
                last = Stopwatch.GetTimestamp();
                if (count++ == 0) first = last;
            }
        return new DecodeRate(count, Stopwatch.GetElapsedTime(first, last).TotalSeconds, Stopwatch.GetElapsedTime(start, first).TotalMilliseconds);
    }

    public static DecodeRate GenAiDecodeRate(GenAi.Model model, int prompt, int newTokens)
    {
        using var parameters = new GenAi.GeneratorParams(model);
        parameters.SetSearchOption("max_length", prompt + newTokens);
        using var generator = new GenAi.Generator(model, parameters);
        var start = Stopwatch.GetTimestamp();
        generator.AppendTokens(Prompt(prompt, 777));
        long first = 0, last = 0;
        var count = 0;
        while (!generator.IsDone())
        {
            generator.GenerateNextToken();
            last = Stopwatch.GetTimestamp();
            if (count++ == 0) first = last;
        }
        return new DecodeRate(count, Stopwatch.GetElapsedTime(first, last).TotalSeconds, Stopwatch.GetElapsedTime(start, first).TotalMilliseconds);
    }

    /// <summary>Chat-shaped load: conversations in parallel; each turn re-sends the whole history plus a new message.</summary>
    public static async Task<ChatResult> Chat(InferenceEngine engine, int conversations, int turns, int system, int user, int reply)
    {
        var systemPrompt = Prompt(system, 424242);
        var ttft = new ConcurrentBag<double>();
        long promptTokens = 0, cachedTokens = 0, generated = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, conversations).Select(c => Task.Run(async () =>
        {
            var history = new List<int>(systemPrompt);
            for (var t = 0; t < turns; t++)
            {
                history.AddRange(Prompt(user, c * 100 + t + 5000));
                var start = Stopwatch.GetTimestamp();
                var first = true;
                GenerationCompleted? done = null;
                await foreach (var e in engine.Submit(Greedy([.. history], reply) with { IgnoreEos = true }).ReadAllAsync())
                {
                    if (e is TokensGenerated && first) { ttft.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds); first = false; }
                    if (e is GenerationCompleted d) done = d;
                }
                history.AddRange(done!.Sequences[0].TokenIds);
                Interlocked.Add(ref promptTokens, done.Usage.PromptTokens);
                Interlocked.Add(ref cachedTokens, done.Usage.CachedPromptTokens);
                Interlocked.Add(ref generated, done.Usage.CompletionTokens);
            }
        })));
        var sorted = ttft.Order().ToArray();
        return new ChatResult(conversations * turns, clock.Elapsed.TotalSeconds, promptTokens, cachedTokens, generated,
            sorted[sorted.Length / 2], sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(0.99 * sorted.Length) - 1)]);
    }
}

public sealed record ChatResult(int Requests, double Seconds, long PromptTokens, long CachedTokens, long Generated, double TtftP50, double TtftP99);
