using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;

namespace ChatServices.ModelBuilder.Tests.Checkpoints;

/// <summary>
/// Writes Hugging Face checkpoints the way <c>save_pretrained</c> does, for the conversion tests: safetensors files
/// (8-byte header length, JSON header, raw little-endian data) in F32, F16 or BF16, optionally sharded with a
/// <c>model.safetensors.index.json</c>. Written from the format's specification, independently of the builder's reader.
/// </summary>
public static class SafetensorsFile
{
    /// <summary>Values as the checkpoint stores them: each float rounded to <paramref name="dtype"/>.</summary>
    public static float[] RoundTo(string dtype, float[] values) => dtype switch
    {
        "F32" => values,
        "F16" => values.Select(v => (float)(Half)v).ToArray(),
        "BF16" => values.Select(v => BitConverter.Int32BitsToSingle((int)(Bf16Bits(v) << 16))).ToArray(),
        _ => throw new ArgumentException(dtype),
    };

    public static void Write(string directory, IReadOnlyDictionary<string, (long[] Shape, float[] Values)> tensors, string dtype, int shards)
    {
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToArray();
        var perShard = (names.Length + shards - 1) / shards;
        var weightMap = new JsonObject();
        for (var s = 0; s < shards; s++)
        {
            var file = shards == 1 ? "model.safetensors" : $"model-{s + 1:D5}-of-{shards:D5}.safetensors";
            var part = names.Skip(s * perShard).Take(perShard).ToArray();
            WriteFile(Path.Combine(directory, file), part.Select(n => (n, tensors[n].Shape, tensors[n].Values)), dtype);
            foreach (var n in part) weightMap[n] = file;
        }
        if (shards > 1)
        {
            var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = 0 }, ["weight_map"] = weightMap };
            File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"), index.ToJsonString());
        }
    }

    private static void WriteFile(string path, IEnumerable<(string Name, long[] Shape, float[] Values)> tensors, string dtype)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        using var data = new MemoryStream();
        foreach (var (name, shape, values) in tensors)
        {
            var begin = data.Position;
            foreach (var v in values)
            {
                switch (dtype)
                {
                    case "F32": data.Write(BitConverter.GetBytes(v)); break;
                    case "F16": data.Write(BitConverter.GetBytes((Half)v)); break;
                    case "BF16": data.Write(BitConverter.GetBytes(Bf16Bits(v))); break;
                }
            }
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(begin, data.Position),
            };
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(length, json.Length);
        file.Write(length);
        file.Write(json);
        data.Position = 0;
        data.CopyTo(file);
    }

    /// <summary>float32 → bfloat16 with round-to-nearest-even, as PyTorch converts.</summary>
    private static ushort Bf16Bits(float value)
    {
        var bits = (uint)BitConverter.SingleToInt32Bits(value);
        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
