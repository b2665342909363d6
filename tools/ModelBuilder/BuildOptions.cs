using ChatServices.ModelBuilder.Quantization;

namespace ChatServices.ModelBuilder;

/// <summary>Element type of the weights, activations and KV cache inside the graph.</summary>
public enum Precision
{
    Float32,
    /// <summary>Weights, activations and the KV cache in float16; logits are cast back to float32.</summary>
    Float16,
}

/// <summary>Which attention the graph uses, which also decides its input convention.</summary>
public enum AttentionKind
{
    /// <summary>ONNX Runtime's GroupQueryAttention with rotary embeddings inside (ONNX Runtime GenAI's convention).</summary>
    GroupQuery,
    /// <summary>Plain ONNX operators only, with a <c>position_ids</c> input (Hugging Face Optimum's convention).</summary>
    Standard,
}

/// <summary>When the weights go to <c>model.onnx.data</c> rather than inside <c>model.onnx</c>.</summary>
public enum ExternalDataMode
{
    /// <summary>External when the weights exceed <see cref="BuildOptions.ExternalDataThresholdBytes"/>.</summary>
    Auto,
    Always,
    Never,
}

/// <summary>How to build the graph. Defaults: float32, GroupQueryAttention, no quantization, external data above 1 GiB, last-token logits.</summary>
public sealed record BuildOptions
{
    public Precision Precision { get; init; } = Precision.Float32;
    public AttentionKind Attention { get; init; } = AttentionKind.GroupQuery;
    /// <summary>4-bit weight-only quantization of every linear projection (the LM head included); null keeps floats.</summary>
    public Int4Options? Int4 { get; init; }
    public ExternalDataMode ExternalData { get; init; } = ExternalDataMode.Auto;
    /// <summary>Protobuf caps a file at 2 GB; 1 GiB leaves room and keeps model.onnx quick to parse.</summary>
    public long ExternalDataThresholdBytes { get; init; } = 1L << 30;
    /// <summary>
    /// Logits for each row's last token only ([batch, 1, vocab]) instead of every position: a prefill then costs one
    /// LM-head row per sequence, not one per prompt token. On by default; off writes [batch, sequence, vocab] (what
    /// prompt log-probabilities or a runtime that reads every position needs).
    /// </summary>
    public bool LastTokenLogitsOnly { get; init; } = true;
    /// <summary>Progress lines for long conversions (one per layer); null is silent.</summary>
    public IProgress<string>? Progress { get; init; }
}
