namespace ChatServices.ModelBuilder.Architectures;

/// <summary>The Llama-family architectures the builder converts, by their Hugging Face <c>architectures</c> name.</summary>
public enum DecoderArchitecture
{
    /// <summary>LlamaForCausalLM (<c>model_type</c> "llama"): no attention bias unless <c>attention_bias</c> is set.</summary>
    Llama,
    /// <summary>MistralForCausalLM (<c>model_type</c> "mistral"): Llama's graph, optional sliding-window attention.</summary>
    Mistral,
    /// <summary>Qwen2ForCausalLM (<c>model_type</c> "qwen2"): Llama's graph with biases on the q, k and v projections.</summary>
    Qwen2,
}

/// <summary>Rotary-embedding frequency scaling, as Hugging Face's <c>rope_scaling</c> describes it.</summary>
/// <param name="Type">"linear", "llama3", "yarn" or "dynamic" ("default" configs carry no scaling at all).</param>
/// <param name="Factor">The context extension factor.</param>
/// <param name="OriginalMaxPositionEmbeddings">The context length the model was pre-trained at (llama3, yarn, dynamic).</param>
/// <param name="LowFreqFactor">llama3: wavelengths above original/low_freq_factor are scaled fully.</param>
/// <param name="HighFreqFactor">llama3: wavelengths below original/high_freq_factor are kept.</param>
/// <param name="BetaFast">yarn: the fast boundary, in rotations (default 32).</param>
/// <param name="BetaSlow">yarn: the slow boundary, in rotations (default 1).</param>
/// <param name="AttentionFactor">yarn: the cos/sin magnitude factor; default 0.1·ln(factor) + 1.</param>
public sealed record RopeScaling(
    string Type,
    double Factor,
    int? OriginalMaxPositionEmbeddings = null,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    double BetaFast = 32.0,
    double BetaSlow = 1.0,
    double? AttentionFactor = null);

/// <summary>
/// Everything about a decoder that shapes its ONNX graph, read from a Hugging Face <c>config.json</c>
/// (or chosen for a random model). Invariants (checked by <see cref="Validate"/>): heads divide evenly into
/// key/value groups, <c>HeadDim</c> is even (rotary halves), and sizes are positive.
/// </summary>
public sealed record DecoderConfig
{
    public required DecoderArchitecture Architecture { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int VocabSize { get; init; }
    /// <summary>Longest sequence (prompt plus generated tokens) the built model serves; sizes the rotary caches.</summary>
    public required int ContextLength { get; init; }
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>The LM head reuses the token embedding matrix (no <c>lm_head.weight</c> in the checkpoint).</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Biases on the q, k and v projections (Qwen2 always; Llama when <c>attention_bias</c> is true).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Bias on the output projection (Llama's <c>attention_bias</c> also adds one to o_proj).</summary>
    public bool OutputBias { get; init; }
    /// <summary>Mistral/Qwen2 sliding-window attention width in tokens, when it is narrower than the context.</summary>
    public int? SlidingWindow { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }

    public int QueryHiddenSize => NumHeads * HeadDim;
    public int KvHiddenSize => NumKvHeads * HeadDim;

    /// <summary>The Hugging Face <c>model_type</c> (also ONNX Runtime GenAI's model type name).</summary>
    public string ModelType => Architecture switch
    {
        DecoderArchitecture.Llama => "llama",
        DecoderArchitecture.Mistral => "mistral",
        DecoderArchitecture.Qwen2 => "qwen2",
        _ => throw new ArgumentOutOfRangeException(nameof(Architecture)),
    };

    public string ArchitectureClassName => Architecture switch
    {
        DecoderArchitecture.Llama => "LlamaForCausalLM",
        DecoderArchitecture.Mistral => "MistralForCausalLM",
        DecoderArchitecture.Qwen2 => "Qwen2ForCausalLM",
        _ => throw new ArgumentOutOfRangeException(nameof(Architecture)),
    };

    /// <summary>Parameter count of the decoder as built (the LM head counted once when tied).</summary>
    public long ParameterCount
    {
        get
        {
            long h = HiddenSize, q = QueryHiddenSize, kv = KvHiddenSize, f = IntermediateSize, v = VocabSize;
            var attention = h * q + 2 * h * kv + q * h + (QkvBias ? q + 2 * kv : 0) + (OutputBias ? h : 0);
            var mlp = 3 * h * f;
            var layer = attention + mlp + 2 * h;
            return v * h * (TieWordEmbeddings ? 1 : 2) + NumLayers * layer + h;
        }
    }

    public void Validate()
    {
        Require(HiddenSize > 0 && IntermediateSize > 0 && NumLayers > 0 && VocabSize > 0 && ContextLength > 0,
            "hidden size, intermediate size, layers, vocabulary size and context length must be positive");
        Require(NumHeads > 0 && NumKvHeads > 0, "head counts must be positive");
        Require(NumHeads % NumKvHeads == 0,
            $"num_attention_heads ({NumHeads}) must be a multiple of num_key_value_heads ({NumKvHeads})");
        Require(HeadDim > 0 && HeadDim % 2 == 0, $"head_dim ({HeadDim}) must be positive and even (rotary embeddings rotate halves)");
        Require(RmsNormEps > 0, "rms_norm_eps must be positive");
        Require(RopeTheta > 0, "rope_theta must be positive");
    }

    private static void Require(bool condition, string message)
    {
        if (!condition) throw new ModelBuilderException($"Invalid model configuration: {message}.");
    }
}
