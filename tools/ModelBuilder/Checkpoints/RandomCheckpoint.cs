using ChatServices.ModelBuilder.Architectures;

namespace ChatServices.ModelBuilder.Checkpoints;

/// <summary>
/// Random weights for a <see cref="DecoderConfig"/>, under the Hugging Face names, for tests and the embedded default.
/// Each tensor is drawn from its own generator seeded by (seed, name), so values do not depend on read order.
/// Scales keep activations O(1) through the depth: linear weights ~ N(0, 1/in_features), embeddings ~ N(0, 1),
/// norm gains ~ 1 + N(0, 0.1²), biases ~ N(0, 0.1²); logits then vary enough for greedy decoding to be well defined.
/// </summary>
public sealed class RandomCheckpoint(DecoderConfig config, int seed) : ITensorSource
{
    private readonly Dictionary<string, long[]> _shapes =
        LlamaTensorNames.Expected(config).ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);

    public IEnumerable<string> Names => _shapes.Keys;

    public bool Contains(string name) => _shapes.ContainsKey(name);

    public long[] Shape(string name) =>
        _shapes.TryGetValue(name, out var s) ? s : throw new ModelBuilderException($"Tensor '{name}' is missing from the checkpoint.");

    public float[] ReadFloat32(string name)
    {
        var shape = Shape(name);
        var values = new float[shape.Aggregate(1L, (a, d) => a * d)];
        var random = new Random(StableSeed(name));
        var (mean, std) = name switch
        {
            _ when name.EndsWith("norm.weight", StringComparison.Ordinal) => (1.0, 0.1),
            _ when name.EndsWith(".bias", StringComparison.Ordinal) => (0.0, 0.1),
            LlamaTensorNames.Embedding => (0.0, 1.0),
            _ => (0.0, 1.0 / Math.Sqrt(shape[^1])),
        };
        for (var i = 0; i < values.Length; i++) values[i] = (float)(mean + std * NextGaussian(random));
        return values;
    }

    public void Dispose() { }

    private int StableSeed(string name)
    {
        // FNV-1a: string.GetHashCode is randomised per process, and the weights must be reproducible.
        var hash = 2166136261u ^ (uint)seed;
        foreach (var c in name) hash = (hash ^ c) * 16777619u;
        return (int)(hash & 0x7FFFFFFF);
    }

    private static double NextGaussian(Random random)
    {
        var u1 = 1.0 - random.NextDouble();
        var u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
