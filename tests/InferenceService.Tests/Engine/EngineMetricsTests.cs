using System.Diagnostics.Metrics;
using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Tests.Engine;

/// <summary>The engine's instruments report what happened, read through a MeterListener as an exporter would.</summary>
public sealed class EngineMetricsTests(TestModel model) : IClassFixture<TestModel>
{
    [Fact]
    public async Task Time_to_first_token_usage_and_kv_gauges_are_reported()
    {
        using var engine = model.Start();
        var measurements = new List<(string Name, double Value)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == engine.Metrics.Meter) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<double>((i, v, _, _) => { lock (measurements) measurements.Add((i.Name, v)); });
        listener.SetMeasurementEventCallback<long>((i, v, _, _) => { lock (measurements) measurements.Add((i.Name, v)); });
        listener.SetMeasurementEventCallback<int>((i, v, _, _) => { lock (measurements) measurements.Add((i.Name, v)); });
        listener.Start();

        var prompt = TestModel.Prompt(12, 5);
        await engine.GenerateAsync(new GenerationRequest { PromptTokenIds = prompt, Sampling = SamplingParameters.Greedy, MaxNewTokens = 8, IgnoreEos = true });
        await engine.GenerateAsync(new GenerationRequest { PromptTokenIds = prompt, Sampling = SamplingParameters.Greedy, MaxNewTokens = 8, IgnoreEos = true });
        listener.RecordObservableInstruments();

        lock (measurements)
        {
            Assert.Equal(2, measurements.Count(m => m.Name == "gen_ai.server.time_to_first_token" && m.Value > 0));
            Assert.Equal(2, measurements.Count(m => m.Name == "gen_ai.server.time_per_output_token"));
            // 8 tokens each, 7 gaps after the first: one inter-token latency per decoding step that gave tokens.
            Assert.Equal(14, measurements.Count(m => m.Name == "chatservices.inference.inter_token_latency" && m.Value > 0));
            Assert.Equal(2, measurements.Count(m => m.Name == "chatservices.inference.queue.duration"));
            Assert.Equal(16, measurements.Where(m => m.Name == "chatservices.inference.tokens").Sum(m => m.Value) - 24);
            Assert.Contains(measurements, m => m.Name == "chatservices.inference.kv_cache.usage" && m.Value == 0);
            Assert.Contains(measurements, m => m.Name == "chatservices.inference.kv_cache.slots.used" && m.Value == 0);
            Assert.Contains(measurements, m => m.Name == "chatservices.inference.kv_cache.slots.cached" && m.Value > 0); // parked turn
            Assert.Contains(measurements, m => m.Name == "chatservices.inference.kv_cache.slots.total" && m.Value > 0);
            Assert.Contains(measurements, m => m.Name == "chatservices.inference.kv_cache.tokens" && m.Value > 0);
            Assert.Contains(measurements, m => m.Name == "chatservices.inference.prefix_cache.lookups" && m.Value == 2);
            Assert.Contains(measurements, m => m.Name == "chatservices.inference.prefix_cache.hits" && m.Value == 1);
            Assert.Contains(measurements, m => m.Name == "chatservices.inference.prefix_cache.hit_rate" && m.Value == 0.5);
            Assert.Contains(measurements, m => m.Name == "chatservices.inference.queue.depth" && m.Value == 0);
            Assert.Contains(measurements, m => m.Name == "chatservices.inference.sequences.running" && m.Value == 0);
        }
    }
}
