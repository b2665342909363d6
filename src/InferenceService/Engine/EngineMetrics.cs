using System.Diagnostics.Metrics;
using ChatServices.ServiceDefaults;

namespace ChatServices.InferenceService.Engine;

/// <summary>A consistent view of the engine's load, published after every step (read from any thread).</summary>
public sealed record EngineStatus(
    int Waiting,
    int Running,
    int SlotsTotal,
    int SlotsInUse,
    int SlotsCached,
    int SlotCapacityTokens,
    long KvTokensUsed,
    long KvBytesTotal,
    long Preemptions,
    long PrefixLookups,
    long PrefixHits,
    long PrefixHitTokens,
    long GeneratedTokens,
    long PrefillChunks = 0,
    long PrefillRuns = 0,
    long KvTokenBudget = 0,
    long KvTokensHeld = 0,
    long KvBudgetBytes = 0,
    int PeakRunning = 0)
{
    /// <summary>Share of slots held by running sequences (cached prefixes are reclaimable, so not counted).</summary>
    public double KvUsage => SlotsTotal == 0 ? 0 : (double)SlotsInUse / SlotsTotal;
    public double PrefixHitRate => PrefixLookups == 0 ? 0 : (double)PrefixHits / PrefixLookups;
}

/// <summary>
/// The engine's instruments (System.Diagnostics.Metrics, meter <see cref="MeterName"/>). Names follow the
/// OpenTelemetry GenAI semantic conventions where one exists (<c>gen_ai.server.*</c>); the rest are
/// <c>chatservices.inference.*</c>. The Prometheus exporter writes dots as underscores and appends the unit
/// (<c>_seconds</c>, <c>_ratio</c>) and <c>_total</c> for counters: <c>chatservices.inference.queue.depth</c> is
/// scraped as <c>chatservices_inference_queue_depth</c>.
/// </summary>
/// <remarks>
/// Gauges and cumulative counts are read from <see cref="EngineStatus"/> when a collector asks, never on the engine
/// thread. What the engine thread records (a histogram value per request, or per request and step for the
/// inter-token latency) carries no tags or a static one: no allocation per token.
/// </remarks>
public sealed class EngineMetrics : IDisposable
{
    public const string MeterName = "ChatServices.InferenceService";

    private static readonly KeyValuePair<string, object?> InputTokens = new("gen_ai.token.type", "input");
    private static readonly KeyValuePair<string, object?> OutputTokens = new("gen_ai.token.type", "output");

    private readonly Meter _meter = new(MeterName);
    private readonly Histogram<double> _ttft;
    private readonly Histogram<double> _tpot;
    private readonly Histogram<double> _interToken;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _queueTime;
    private readonly Counter<long> _tokens;
    private readonly Histogram<int> _stepSequences;

    /// <summary>The meter the instruments belong to (one per engine).</summary>
    public Meter Meter => _meter;

    public EngineMetrics(Func<EngineStatus> status)
    {
        var tokenLatency = new InstrumentAdvice<double> { HistogramBucketBoundaries = Telemetry.TokenLatencyBuckets };
        var requestLatency = new InstrumentAdvice<double> { HistogramBucketBoundaries = Telemetry.RequestLatencyBuckets };

        // Latencies, recorded by the engine thread.
        _ttft = _meter.CreateHistogram("gen_ai.server.time_to_first_token", "s",
            "Time from request arrival to its first generated token.", advice: tokenLatency);
        _tpot = _meter.CreateHistogram("gen_ai.server.time_per_output_token", "s",
            "Mean time between generated tokens after the first, per request.", advice: tokenLatency);
        _interToken = _meter.CreateHistogram("chatservices.inference.inter_token_latency", "s",
            "Time between two successive steps that gave a request tokens (what a streaming client waits per token).", advice: tokenLatency);
        _duration = _meter.CreateHistogram("gen_ai.server.request.duration", "s",
            "Time from request arrival to its last token.", advice: requestLatency);
        _queueTime = _meter.CreateHistogram("chatservices.inference.queue.duration", "s",
            "Time from request arrival to its admission into the running batch.", advice: requestLatency);
        _tokens = _meter.CreateCounter<long>("chatservices.inference.tokens", "{token}",
            "Tokens of completed requests, by gen_ai.token.type: input (prompt) and output (generated).");
        // Its count is the number of engine steps; its values show how many sequences shared each one.
        _stepSequences = _meter.CreateHistogram("chatservices.inference.step.sequences", "{sequence}",
            "Sequences computed together in one engine step (prefill chunks and decodes).",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256] });

        // Load, read from the last published status when collected.
        _meter.CreateObservableGauge("chatservices.inference.queue.depth", () => status().Waiting, "{request}",
            "Requests waiting for admission to the running batch.");
        _meter.CreateObservableGauge("chatservices.inference.sequences.running", () => status().Running, "{sequence}",
            "Sequences in the running batch.");
        _meter.CreateObservableGauge("chatservices.inference.kv_cache.usage", () => status().KvUsage, "1",
            "Share of KV-cache slots held by running sequences (0..1).");
        _meter.CreateObservableGauge("chatservices.inference.kv_cache.slots.used", () => status().SlotsInUse, "{slot}",
            "KV-cache slots held by running sequences.");
        _meter.CreateObservableGauge("chatservices.inference.kv_cache.slots.cached", () => status().SlotsCached, "{slot}",
            "KV-cache slots parked for prefix reuse (reclaimable).");
        _meter.CreateObservableGauge("chatservices.inference.kv_cache.slots.total", () => status().SlotsTotal, "{slot}",
            "KV-cache slots in the pool.");
        _meter.CreateObservableGauge("chatservices.inference.kv_cache.tokens", () => status().KvTokensUsed, "{token}",
            "Tokens held in the KV cache (running and cached).");
        _meter.CreateObservableCounter("chatservices.inference.preemptions", () => status().Preemptions, "{sequence}",
            "Running sequences preempted to free KV cache.");
        _meter.CreateObservableCounter("chatservices.inference.prefix_cache.lookups", () => status().PrefixLookups, "{request}",
            "Admitted prompts looked up in the prefix cache.");
        _meter.CreateObservableCounter("chatservices.inference.prefix_cache.hits", () => status().PrefixHits, "{request}",
            "Admitted prompts that reused cached KV.");
        _meter.CreateObservableCounter("chatservices.inference.prefix_cache.hit_tokens", () => status().PrefixHitTokens, "{token}",
            "Prompt tokens served from the prefix cache.");
        _meter.CreateObservableGauge("chatservices.inference.prefix_cache.hit_rate", () => status().PrefixHitRate, "1",
            "Share of admitted prompts that reused cached KV (hits / lookups).");
    }

    public void FirstToken(double seconds) => _ttft.Record(seconds);

    /// <summary>One engine step ran <paramref name="sequences"/> sequences through the model together.</summary>
    public void Step(int sequences) => _stepSequences.Record(sequences);

    /// <summary>A step gave a request tokens, <paramref name="seconds"/> after the previous one that did.</summary>
    public void InterTokenLatency(double seconds) => _interToken.Record(seconds);

    public void Completed(double durationSeconds, double queueSeconds, double secondsPerOutputToken, int promptTokens, int outputTokens)
    {
        _duration.Record(durationSeconds);
        _queueTime.Record(queueSeconds);
        if (outputTokens > 1) _tpot.Record(secondsPerOutputToken);
        _tokens.Add(promptTokens, InputTokens);
        _tokens.Add(outputTokens, OutputTokens);
    }

    public void Dispose() => _meter.Dispose();
}
