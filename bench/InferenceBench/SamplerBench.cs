using System.Diagnostics;
using System.Reflection;
using System.Text;
using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;
using ChatServices.ModelBuilder;
using ChatServices.ModelBuilder.Folder;

namespace ChatServices.InferenceBench;

/// <summary>
/// The sampler's share of a decode step: time per <see cref="TokenSampler.Sample"/> call for common settings on
/// model-like logits, beside the engine's single-stream decode step on the bench-25m shape with a 32,000 and a
/// 151,936 vocabulary. Usage: <c>dotnet run -c Release --project bench/InferenceBench -- --sampler [--label NAME]</c>;
/// appends one table to bench/results/sampler.md (run before and after a sampler change, same machine).
/// </summary>
public static class SamplerBench
{
    private static readonly (string Name, SamplingParameters Parameters, bool Logprob)[] Settings =
    [
        ("greedy", SamplingParameters.Greedy, false),
        ("greedy + logprobs", SamplingParameters.Greedy, true),
        ("temperature 0.8", new() { Temperature = 0.8f }, false),
        ("top_k 40", new() { TopK = 40 }, false),
        ("top_p 0.9", new() { TopP = 0.9f }, false),
        ("top_k 50 + top_p 0.9, temperature 0.7", new() { TopK = 50, TopP = 0.9f, Temperature = 0.7f }, false),
    ];

    /// <summary>Logit rows: normal(0, 2) with 30 peaks at <c>Peak</c>…<c>Peak</c> + 2.5 (the higher, the fewer tokens hold 90 % of the mass).</summary>
    private static readonly (string Name, float Peak)[] Distributions = [("flat tail (peaks 8–10.5)", 8f), ("peaked (peaks 16–18.5)", 16f)];

    public static async Task Run(string repo, string label, Action<string> log, string loadAtStart)
    {
        var table = new StringBuilder();
        table.AppendLine($"### {label}").AppendLine();
        table.AppendLine("| vocabulary | decode step (ms) | logits | setting | sampler (µs) | share of the step |");
        table.AppendLine("| ---: | ---: | --- | --- | ---: | ---: |");
        foreach (var vocab in new[] { 32_000, 151_936 })
        {
            var step = await DecodeStepMilliseconds(repo, vocab, log);
            var sampler = new TokenSampler(vocab);
            foreach (var (distribution, peak) in Distributions)
            {
                var rows = Enumerable.Range(0, 16).Select(r => Logits(vocab, r, peak)).ToArray();
                foreach (var (name, p, logprob) in Settings)
                {
                    var micro = Measure(sampler, rows, p, logprob);
                    log($"[bench] sampler vocab {vocab} {distribution} {name}: {micro:F1} µs ({micro / 10 / step:F2} % of a {step:F2} ms step)");
                    table.AppendLine($"| {vocab:N0} | {step:F2} | {distribution} | {name} | {micro:F1} | {micro / 1000 / step:P1} |");
                }
            }
        }
        var output = Path.Combine(repo, "bench", "results", "sampler.md");
        if (!File.Exists(output))
            File.WriteAllText(output, """
                # Sampler cost per token

                `dotnet run -c Release --project bench/InferenceBench -- --sampler`: microseconds per `TokenSampler.Sample`
                call (median of 9 rounds over 16 logit rows: normal(0, 2) logits with 30 peaks, two heights), and
                the engine's single-stream greedy decode step (bench-25m shape, 8 layers, hidden 256, with the vocabulary
                shown, untied embeddings, last-token logits, 16-token prompt, 64 new tokens). Share = sampler / step.
                "+ logprobs" asks for the chosen token's log-probability (the log-softmax over the vocabulary).


                """);
        File.AppendAllText(output, table + $"\nLoad average {loadAtStart} at start, {LoadAverage()} at the end.\n\n");
        log($"[bench] appended to {output}");
    }

    private static async Task<double> DecodeStepMilliseconds(string repo, int vocab, Action<string> log)
    {
        var path = Path.Combine(repo, ".models", $"bench-25m-vocab{vocab}");
        if (!File.Exists(Path.Combine(path, "model.onnx")))
        {
            log($"[bench] building the bench-25m shape with vocabulary {vocab} into {path}");
            ModelFolderBuilder.FromRandom(RandomModelSpec.Preset("bench-25m") with { VocabSize = vocab, Seed = 26 }, path, new BuildOptions());
        }
        using var engine = InferenceEngine.Start(new InferenceOptions
        {
            ModelPath = path, KvCacheBudgetMiB = 64, MaxSequenceTokens = 256, MaxBatchSize = 1, PrefixCaching = false,
        });
        await Workloads.EngineDecodeRate(engine, prompt: 16, newTokens: 16); // warm-up
        var best = double.MaxValue;
        for (var r = 0; r < 3; r++) best = Math.Min(best, (await Workloads.EngineDecodeRate(engine, prompt: 16, newTokens: 64)).StepMilliseconds);
        return best;
    }

    /// <summary>Median over rounds of the mean µs per call over every row.</summary>
    private static double Measure(TokenSampler sampler, float[][] rows, SamplingParameters p, bool logprob)
    {
        var rng = new SeededRandom(1);
        var sample = SampleCall(sampler, logprob);
        foreach (var row in rows) sample(row, p, rng); // warm-up
        var rounds = new double[9];
        for (var r = 0; r < rounds.Length; r++)
        {
            var start = Stopwatch.GetTimestamp();
            for (var i = 0; i < 4; i++)
                foreach (var row in rows) sample(row, p, rng);
            rounds[r] = Stopwatch.GetElapsedTime(start).TotalMicroseconds / (4 * rows.Length);
        }
        Array.Sort(rounds);
        return rounds[rounds.Length / 2];
    }

    /// <summary>
    /// A call of Sample that asks for the log-probability or not. A sampler without the choice (it always computes
    /// it) is called as it is, so the same bench measures it.
    /// </summary>
    private static Action<float[], SamplingParameters, SeededRandom> SampleCall(TokenSampler sampler, bool logprob)
    {
        var method = typeof(TokenSampler).GetMethod(nameof(TokenSampler.Sample))!;
        if (method.GetParameters().Length == 5)
        {
            var always = method.CreateDelegate<SampleAlways>(sampler);
            return (row, p, rng) => always(row, p, null, rng, []);
        }
        var call = method.CreateDelegate<SampleWithChoice>(sampler);
        return (row, p, rng) => call(row, p, null, rng, [], logprob);
    }

    private delegate SampledToken SampleAlways(ReadOnlySpan<float> logits, SamplingParameters p, TokenHistory? history,
        SeededRandom rng, Span<TokenLogprob> top);

    private delegate SampledToken SampleWithChoice(ReadOnlySpan<float> logits, SamplingParameters p, TokenHistory? history,
        SeededRandom rng, Span<TokenLogprob> top, bool logprob);

    private static float[] Logits(int vocab, int seed, float peak)
    {
        var random = new Random(seed);
        var logits = new float[vocab];
        for (var i = 0; i < vocab; i++)
            logits[i] = (float)(2 * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        for (var i = 0; i < 30; i++) logits[random.Next(vocab)] = peak + random.Next(6) * 0.5f;
        return logits;
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
