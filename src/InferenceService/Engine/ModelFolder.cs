using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace ChatServices.InferenceService.Engine;

/// <summary>How a decoder graph names and shapes its inputs.</summary>
public enum DecoderConvention
{
    /// <summary>
    /// ONNX Runtime GenAI's convention: <c>input_ids</c>, <c>attention_mask</c>, <c>past_key_values.N.key/value</c>,
    /// with GroupQueryAttention computing positions and sequence lengths from the mask inside the graph. Past and
    /// present KV can share one buffer sized to the slot capacity, so nothing is copied between steps.
    /// </summary>
    GroupQueryAttention,

    /// <summary>
    /// The Hugging Face Optimum export: the same names plus <c>position_ids</c>, with plain attention that
    /// concatenates past and new KV into a present tensor of length past + new.
    /// </summary>
    Optimum,
}

/// <summary>
/// A model folder in ONNX Runtime GenAI's layout (<c>genai_config.json</c>, the ONNX graph, tokenizer files) and what
/// the engine needs to know about it: geometry from the config, names and element types from the session metadata.
/// </summary>
public sealed record ModelFolder(
    string Path,
    string Name,
    string ModelFile,
    int ContextLength,
    int VocabSize,
    int[] EosTokenIds,
    int Layers,
    int KvHeads,
    int HeadSize,
    string InputIdsName,
    string AttentionMaskName,
    string? PositionIdsName,
    string PastKeyFormat,
    string PastValueFormat,
    string LogitsName,
    string PresentKeyFormat,
    string PresentValueFormat)
{
    /// <summary>
    /// Whether the graph's logits are [batch, 1, vocab], each row's last token only (ModelBuilder's default), rather
    /// than [batch, sequence, vocab]. Read from the graph by <see cref="Inspect"/>.
    /// </summary>
    public bool LastTokenLogits { get; init; }

    public string PastKeyName(int layer) => string.Format(PastKeyFormat.Replace("%d", "{0}"), layer);
    public string PastValueName(int layer) => string.Format(PastValueFormat.Replace("%d", "{0}"), layer);
    public string PresentKeyName(int layer) => string.Format(PresentKeyFormat.Replace("%d", "{0}"), layer);
    public string PresentValueName(int layer) => string.Format(PresentValueFormat.Replace("%d", "{0}"), layer);

    public DecoderConvention Convention => PositionIdsName is null ? DecoderConvention.GroupQueryAttention : DecoderConvention.Optimum;

    /// <summary>Reads <c>genai_config.json</c>; throws <see cref="InvalidDataException"/> naming what is missing.</summary>
    public static ModelFolder Load(string path)
    {
        var configPath = System.IO.Path.Combine(path, "genai_config.json");
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"No genai_config.json in the model folder '{path}'.", configPath);
        using var doc = JsonDocument.Parse(File.ReadAllText(configPath));
        var model = Required(doc.RootElement, "model");
        var decoder = Required(model, "decoder");
        var inputs = decoder.TryGetProperty("inputs", out var i) ? i : default;
        var outputs = decoder.TryGetProperty("outputs", out var o) ? o : default;
        var hidden = Int(decoder, "hidden_size", 0);
        var heads = Int(decoder, "num_attention_heads", 0);
        var headSize = Int(decoder, "head_size", heads > 0 ? hidden / heads : 0);
        var file = Str(decoder, "filename", "model.onnx");
        return new ModelFolder(
            Path: path,
            Name: Str(model, "type", System.IO.Path.GetFileName(System.IO.Path.GetFullPath(path).TrimEnd('/'))),
            ModelFile: System.IO.Path.Combine(path, file),
            ContextLength: Int(model, "context_length", 0) is > 0 and var ctx ? ctx : throw Missing("model.context_length"),
            VocabSize: Int(model, "vocab_size", 0) is > 0 and var vocab ? vocab : throw Missing("model.vocab_size"),
            EosTokenIds: model.TryGetProperty("eos_token_id", out var eos)
                ? eos.ValueKind == JsonValueKind.Array ? eos.EnumerateArray().Select(e => e.GetInt32()).ToArray() : [eos.GetInt32()]
                : [],
            Layers: Int(decoder, "num_hidden_layers", 0) is > 0 and var layers ? layers : throw Missing("model.decoder.num_hidden_layers"),
            KvHeads: Int(decoder, "num_key_value_heads", heads) is > 0 and var kv ? kv : throw Missing("model.decoder.num_key_value_heads"),
            HeadSize: headSize > 0 ? headSize : throw Missing("model.decoder.head_size"),
            InputIdsName: Str(inputs, "input_ids", "input_ids"),
            AttentionMaskName: Str(inputs, "attention_mask", "attention_mask"),
            PositionIdsName: null,
            PastKeyFormat: Str(inputs, "past_key_names", "past_key_values.%d.key"),
            PastValueFormat: Str(inputs, "past_value_names", "past_key_values.%d.value"),
            LogitsName: Str(outputs, "logits", "logits"),
            PresentKeyFormat: Str(outputs, "present_key_names", "present.%d.key"),
            PresentValueFormat: Str(outputs, "present_value_names", "present.%d.value"));
    }

    /// <summary>
    /// Completes the folder's description from the loaded session: which convention the graph follows, whether its
    /// logits cover every position or each row's last token, and the element type of its KV cache (float or float16).
    /// </summary>
    public (ModelFolder Folder, TensorElementType KvType) Inspect(InferenceSession session)
    {
        var inputs = session.InputMetadata;
        foreach (var name in new[] { InputIdsName, AttentionMaskName, PastKeyName(0), PastValueName(0) })
            if (!inputs.ContainsKey(name))
                throw new InvalidDataException($"The model graph has no input '{name}' (inputs: {string.Join(", ", inputs.Keys)}).");
        if (!session.OutputMetadata.TryGetValue(LogitsName, out var logits))
            throw new InvalidDataException($"The model graph has no output '{LogitsName}'.");
        if (logits.Dimensions.Length != 3)
            throw new InvalidDataException($"The model graph's '{LogitsName}' has {logits.Dimensions.Length} dimensions; expected [batch, sequence, vocab].");
        var positions = inputs.ContainsKey("position_ids") ? "position_ids" : null;
        var kvType = inputs[PastKeyName(0)].ElementDataType;
        if (kvType is not (TensorElementType.Float or TensorElementType.Float16))
            throw new InvalidDataException($"KV cache element type {kvType} is not supported (float or float16).");
        // A fixed sequence dimension of 1 means last-token logits; symbolic (-1) means one row per position fed.
        return (this with { PositionIdsName = positions, LastTokenLogits = logits.Dimensions[1] == 1 }, kvType);
    }

    private static JsonElement Required(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) ? v : throw Missing(name);

    private static InvalidDataException Missing(string name) => new($"genai_config.json lacks '{name}'.");

    private static int Int(JsonElement e, string name, int fallback) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback;

    private static string Str(JsonElement e, string name, string fallback) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : fallback;
}
