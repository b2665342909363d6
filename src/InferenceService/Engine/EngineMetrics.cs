using System.Diagnostics.Metrics;

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
    long GeneratedTokens)
{
    /// <summary>Share of slots held by running sequences (cached prefixes are reclaimable, so not counted).</summary>
    public double KvUsage => SlotsTotal == 0 ? 0 : (double)SlotsInUse / SlotsTotal;
    public double PrefixHitRate => PrefixLookups == 0 ? 0 : (double)PrefixHits / PrefixLookups;
}

/// <summary>
/// The engine's instruments (System.Diagnostics.Metrics, meter <see cref="MeterName"/>). Names follow the
/// OpenTelemetry GenAI semantic conventions where one exists (<c>gen_ai.server.*</c>); the rest are
/// <c>chat.inference.*</c>.
/// </summary>
public sealed class EngineMetrics : IDisposable
{
    public const string MeterName = "ChatServices.InferenceService";

    private readonly Meter _meter = new(MeterName);

    /// <summary>The meter the instruments belong to (one per engine).</summary>
    public Meter Meter => _meter;
    private readonly Histogram<double> _ttft;
    private readonly Histogram<double> _tpot;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _tokens;

    public EngineMetrics(Func<EngineStatus> status)
    {
        _ttft = _meter.CreateHistogram<double>("gen_ai.server.time_to_first_token", "s", "Time from request arrival to its first generated token.");
        _tpot = _meter.CreateHistogram<double>("gen_ai.server.time_per_output_token", "s", "Mean time between generated tokens after the first, per request.");
        _duration = _meter.CreateHistogram<double>("gen_ai.server.request.duration", "s", "Time from arrival to the last token.");
        _tokens = _meter.CreateCounter<long>("gen_ai.server.token.usage", "{token}", "Tokens processed, by gen_ai.token.type (input, output).");
        _meter.CreateObservableGauge("chat.inference.queue.depth", () => status().Waiting, "{request}", "Sequences waiting for admission.");
        _meter.CreateObservableGauge("chat.inference.batch.size", () => status().Running, "{sequence}", "Sequences in the running batch.");
        _meter.CreateObservableGauge("chat.inference.kv_cache.usage", () => status().KvUsage, "1", "Share of KV slots held by running sequences.");
        _meter.CreateObservableGauge("chat.inference.kv_cache.tokens", () => status().KvTokensUsed, "{token}", "Tokens held in the KV cache (running and cached).");
        _meter.CreateObservableCounter("chat.inference.preemptions", () => status().Preemptions, "{sequence}", "Running sequences preempted to free KV.");
        _meter.CreateObservableGauge("chat.inference.prefix_cache.hit_rate", () => status().PrefixHitRate, "1", "Share of admitted prompts that reused cached KV.");
        _meter.CreateObservableCounter("chat.inference.prefix_cache.hit_tokens", () => status().PrefixHitTokens, "{token}", "Prompt tokens served from the prefix cache.");
    }

    public void FirstToken(double seconds) => _ttft.Record(seconds);

    public void Completed(double durationSeconds, double secondsPerOutputToken, int promptTokens, int outputTokens)
    {
        _duration.Record(durationSeconds);
        if (outputTokens > 1) _tpot.Record(secondsPerOutputToken);
        _tokens.Add(promptTokens, new KeyValuePair<string, object?>("gen_ai.token.type", "input"));
        _tokens.Add(outputTokens, new KeyValuePair<string, object?>("gen_ai.token.type", "output"));
    }

    public void Dispose() => _meter.Dispose();
}
