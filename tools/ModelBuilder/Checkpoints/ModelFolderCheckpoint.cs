using System.Runtime.InteropServices;
using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Graph;
using Onnx;

namespace ChatServices.ModelBuilder.Checkpoints;

/// <summary>
/// The weights of a float32 model folder this builder wrote, read back under their Hugging Face names: a folder can be
/// rebuilt (quantized, with other options, or as GGUF) without the checkpoint it came from. The graph stores linear
/// weights transposed (<c>name.T</c>, [in, out]) and q/k/v packed into one <c>qkv_proj</c>; both are undone here.
/// </summary>
public sealed class ModelFolderCheckpoint : ITensorSource
{
    private readonly Dictionary<string, TensorProto> _initializers;
    private readonly Dictionary<string, long[]> _shapes;
    private readonly DecoderConfig _config;
    private readonly string _directory;

    private ModelFolderCheckpoint(string directory, DecoderConfig config, Dictionary<string, TensorProto> initializers)
    {
        _directory = directory;
        _config = config;
        _initializers = initializers;
        _shapes = LlamaTensorNames.Expected(config).ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
    }

    /// <summary>True when <paramref name="directory"/> holds a model.onnx and no safetensors checkpoint.</summary>
    public static bool IsModelFolder(string directory) =>
        File.Exists(Path.Combine(directory, "model.onnx")) && Directory.GetFiles(directory, "*.safetensors").Length == 0;

    public static ModelFolderCheckpoint Open(string directory, DecoderConfig config)
    {
        ModelProto model;
        using (var file = File.OpenRead(Path.Combine(directory, "model.onnx")))
            model = ModelProto.Parser.ParseFrom(file);
        if (model.ProducerName != "ChatServices.ModelBuilder")
            throw new ModelBuilderException($"{directory}/model.onnx was written by '{model.ProducerName}'; only folders ModelBuilder wrote can be read back as weights.");
        var initializers = model.Graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        if (initializers.Keys.Any(n => n.Contains(".MatMulNBits.", StringComparison.Ordinal))
            || initializers.Values.Any(t => t.DataType != (int)TensorProto.Types.DataType.Float && t.Name.EndsWith(".T", StringComparison.Ordinal)))
            throw new ModelBuilderException($"{directory} is not a float32 build; its weights cannot be read back exactly.");
        return new ModelFolderCheckpoint(directory, config, initializers);
    }

    public bool Contains(string name) => _shapes.ContainsKey(name);

    public long[] Shape(string name) =>
        _shapes.TryGetValue(name, out var s) ? s : throw new ModelBuilderException($"Tensor '{name}' is missing from the model folder.");

    public float[] ReadFloat32(string name)
    {
        var shape = Shape(name);
        if (_initializers.TryGetValue(name, out var direct)) return Floats(direct);
        var transposedName = name == LlamaTensorNames.LmHead ? "lm_head.weight.T" : name + ".T";
        if (_initializers.TryGetValue(transposedName, out var transposed))
            return Transpose(Floats(transposed), rows: (int)shape[1], columns: (int)shape[0]);

        // q, k and v (weights or biases) are row ranges of the packed projection: rows [q; k; v].
        foreach (var projection in (string[])["q_proj", "k_proj", "v_proj"])
        {
            var layer = LayerOf(name, projection);
            if (layer < 0) continue;
            var isBias = name.EndsWith(".bias", StringComparison.Ordinal);
            long q = _config.QueryHiddenSize, kv = _config.KvHiddenSize, h = _config.HiddenSize;
            var first = projection switch { "q_proj" => 0, "k_proj" => q, _ => q + kv };
            var rows = shape[0];
            if (isBias)
                return Floats(Initializer(LlamaTensorNames.Attention(layer, GroupQueryAttentionGraph.PackedQkv, "bias"))).AsSpan((int)first, (int)rows).ToArray();
            // Stored transposed: [h, q + 2kv]; row r of the projection is column first + r.
            var packed = Floats(Initializer(LlamaTensorNames.Attention(layer, GroupQueryAttentionGraph.PackedQkv) + ".T"));
            var width = q + 2 * kv;
            var result = new float[rows * h];
            for (var r = 0; r < rows; r++)
            for (var i = 0; i < h; i++)
                result[r * h + i] = packed[i * width + first + r];
            return result;
        }
        throw new ModelBuilderException($"Tensor '{name}' is missing from the model folder.");
    }

    public void Dispose() { }

    private TensorProto Initializer(string name) =>
        _initializers.TryGetValue(name, out var t) ? t : throw new ModelBuilderException($"Initializer '{name}' is missing from {_directory}/model.onnx.");

    private static int LayerOf(string name, string projection)
    {
        const string prefix = "model.layers.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal) || !name.Contains($".self_attn.{projection}.", StringComparison.Ordinal)) return -1;
        return int.Parse(name.AsSpan(prefix.Length, name.IndexOf('.', prefix.Length) - prefix.Length), System.Globalization.CultureInfo.InvariantCulture);
    }

    private float[] Floats(TensorProto tensor)
    {
        if (tensor.DataType != (int)TensorProto.Types.DataType.Float)
            throw new ModelBuilderException($"Initializer '{tensor.Name}' is not float32.");
        var count = tensor.Dims.Aggregate(1L, (a, d) => a * d);
        var values = new float[count];
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
        {
            var entries = tensor.ExternalData.ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
            using var file = File.OpenRead(Path.Combine(_directory, entries["location"]));
            file.Seek(long.Parse(entries["offset"], System.Globalization.CultureInfo.InvariantCulture), SeekOrigin.Begin);
            file.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
        }
        else if (tensor.RawData.Length > 0)
        {
            MemoryMarshal.Cast<byte, float>(tensor.RawData.Span).CopyTo(values);
        }
        else
        {
            tensor.FloatData.CopyTo(values, 0);
        }
        return values;
    }

    private static float[] Transpose(float[] source, int rows, int columns)
    {
        // source is [rows, columns]; the result [columns, rows].
        var result = new float[source.Length];
        for (var r = 0; r < rows; r++)
        for (var c = 0; c < columns; c++)
            result[(long)c * rows + r] = source[(long)r * columns + c];
        return result;
    }
}
