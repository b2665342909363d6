using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace ChatServices.Tests.Shared;

/// <summary>Sums one counter's measurements by tag, as an exporter would see them.</summary>
public sealed class CounterListener : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<(long Value, KeyValuePair<string, object?>[] Tags)> _measurements = new();

    public CounterListener(string name)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Name == name) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) => _measurements.Enqueue((value, tags.ToArray())));
        _listener.Start();
    }

    public long Total(string tag, string value) =>
        _measurements.Where(m => m.Tags.Any(t => t.Key == tag && Equals(t.Value, value))).Sum(m => m.Value);

    public void Dispose() => _listener.Dispose();
}
