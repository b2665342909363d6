using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace ChatServices.ModelBuilder.Checkpoints;

/// <summary>
/// A Hugging Face checkpoint in the safetensors format: one <c>model.safetensors</c>, or shards listed by
/// <c>model.safetensors.index.json</c>. Each file is an 8-byte little-endian header length, a JSON header mapping
/// tensor names to dtype, shape and byte offsets, then the raw little-endian data. F32, F16, BF16 and F64 are read.
/// </summary>
public sealed class SafetensorsCheckpoint : ITensorSource
{
    private sealed record Entry(SafeFileHandle File, string Path, string DType, long[] Shape, long Begin, long End);

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly List<SafeFileHandle> _files = [];

    private SafetensorsCheckpoint() { }

    /// <summary>Opens the checkpoint in <paramref name="directory"/> (sharded when an index file is present).</summary>
    public static SafetensorsCheckpoint Open(string directory)
    {
        var checkpoint = new SafetensorsCheckpoint();
        try
        {
            var index = Path.Combine(directory, "model.safetensors.index.json");
            if (File.Exists(index))
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(index));
                if (!doc.RootElement.TryGetProperty("weight_map", out var map))
                    throw new ModelBuilderException($"{index} has no weight_map.");
                var shards = map.EnumerateObject().Select(p => p.Value.GetString()!).Distinct().Order(StringComparer.Ordinal);
                foreach (var shard in shards) checkpoint.AddFile(Path.Combine(directory, shard));
                foreach (var p in map.EnumerateObject())
                {
                    var shard = Path.Combine(directory, p.Value.GetString()!);
                    if (!checkpoint._entries.TryGetValue(p.Name, out var entry) || entry.Path != shard)
                        throw new ModelBuilderException($"{index} maps '{p.Name}' to {p.Value.GetString()}, which does not contain it.");
                }
            }
            else
            {
                // model.safetensors when present; otherwise every *.safetensors except Mistral's consolidated.safetensors,
                // which repeats the weights under mistral-inference's names.
                var single = Path.Combine(directory, "model.safetensors");
                var files = File.Exists(single)
                    ? [single]
                    : Directory.GetFiles(directory, "*.safetensors")
                        .Where(f => !Path.GetFileName(f).StartsWith("consolidated", StringComparison.Ordinal))
                        .Order(StringComparer.Ordinal).ToArray();
                if (files.Length == 0)
                    throw new ModelBuilderException($"No model.safetensors or model.safetensors.index.json in {directory}.");
                foreach (var file in files) checkpoint.AddFile(file);
            }
            return checkpoint;
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    public IEnumerable<string> Names => _entries.Keys;

    public bool Contains(string name) => _entries.ContainsKey(name);

    public long[] Shape(string name) => Get(name).Shape;

    public float[] ReadFloat32(string name)
    {
        var e = Get(name);
        var count = e.Shape.Aggregate(1L, (a, d) => a * d);
        var elementSize = e.DType switch { "F32" => 4, "F16" or "BF16" => 2, "F64" => 8, _ => 0 };
        if (elementSize == 0)
            throw new ModelBuilderException($"Tensor '{name}' in {e.Path} has dtype {e.DType}; supported are F32, F16, BF16 and F64.");
        if (e.End - e.Begin != count * elementSize)
            throw new ModelBuilderException($"Tensor '{name}' in {e.Path}: {e.End - e.Begin} bytes for shape [{string.Join(", ", e.Shape)}] of {e.DType}.");

        // Read and widen in chunks: a large tensor (an LM head of 150k × 4k) exceeds what one span can address in bytes.
        var result = new float[count];
        var chunk = new byte[Math.Min(e.End - e.Begin, ChunkElements * elementSize)];
        for (long done = 0; done < count;)
        {
            var n = (int)Math.Min(ChunkElements, count - done);
            var bytes = chunk.AsSpan(0, n * elementSize);
            var offset = e.Begin + done * elementSize;
            for (var read = 0; read < bytes.Length;)
            {
                var r = RandomAccess.Read(e.File, bytes[read..], offset + read);
                if (r == 0) throw new ModelBuilderException($"{e.Path} is truncated (tensor '{name}').");
                read += r;
            }
            Widen(e.DType, bytes, result.AsSpan((int)done, n));
            done += n;
        }
        return result;
    }

    private const int ChunkElements = 1 << 24;

    private static void Widen(string dtype, ReadOnlySpan<byte> bytes, Span<float> destination)
    {
        switch (dtype)
        {
            case "F32":
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination);
                break;
            case "F16":
                var halves = MemoryMarshal.Cast<byte, Half>(bytes);
                for (var i = 0; i < destination.Length; i++) destination[i] = (float)halves[i];
                break;
            case "BF16":
                // bfloat16 is the upper half of an IEEE float32.
                var raw = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (var i = 0; i < destination.Length; i++) destination[i] = BitConverter.Int32BitsToSingle(raw[i] << 16);
                break;
            case "F64":
                var doubles = MemoryMarshal.Cast<byte, double>(bytes);
                for (var i = 0; i < destination.Length; i++) destination[i] = (float)doubles[i];
                break;
        }
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }

    private Entry Get(string name) =>
        _entries.TryGetValue(name, out var e) ? e : throw new ModelBuilderException($"Tensor '{name}' is missing from the checkpoint.");

    private void AddFile(string path)
    {
        if (!File.Exists(path)) throw new ModelBuilderException($"Checkpoint shard not found: {path}");
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        _files.Add(handle);
        var length = RandomAccess.GetLength(handle);
        Span<byte> prefix = stackalloc byte[8];
        if (length < 8 || RandomAccess.Read(handle, prefix, 0) != 8)
            throw new ModelBuilderException($"{path} is not a safetensors file (too short).");
        var headerLength = BinaryPrimitives.ReadInt64LittleEndian(prefix);
        if (headerLength <= 0 || headerLength > 100_000_000 || 8 + headerLength > length)
            throw new ModelBuilderException($"{path} is not a safetensors file (header length {headerLength}).");
        var header = new byte[headerLength];
        RandomAccess.Read(handle, header, 8);
        var dataStart = 8 + headerLength;

        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException ex) { throw new ModelBuilderException($"{path}: malformed safetensors header: {ex.Message}", ex); }
        using (doc)
        {
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__") continue;
                var dtype = p.Value.GetProperty("dtype").GetString()!;
                var shape = p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                var offsets = p.Value.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                if (offsets.Length != 2 || offsets[0] > offsets[1] || dataStart + offsets[1] > length)
                    throw new ModelBuilderException($"{path}: tensor '{p.Name}' has data offsets outside the file.");
                if (!_entries.TryAdd(p.Name, new Entry(handle, path, dtype, shape, dataStart + offsets[0], dataStart + offsets[1])))
                    throw new ModelBuilderException($"Tensor '{p.Name}' appears in more than one shard.");
            }
        }
    }
}
