using System.Text.Json.Nodes;
using ChatServices.ModelBuilder.Architectures;

namespace ChatServices.ModelBuilder.Folder;

/// <summary>
/// The dimensions of a random model (tests, benchmarks, the embedded default). Defaults are the tiny test model:
/// 2 layers, hidden 64, 4 heads of 16 sharing 2 key/value heads, vocabulary 512, context 128.
/// </summary>
public sealed record RandomModelSpec
{
    public DecoderArchitecture Architecture { get; init; } = DecoderArchitecture.Llama;
    public int Layers { get; init; } = 2;
    public int HiddenSize { get; init; } = 64;
    public int Heads { get; init; } = 4;
    public int KvHeads { get; init; } = 2;
    /// <summary>Defaults to hidden_size / heads.</summary>
    public int? HeadDim { get; init; }
    public int IntermediateSize { get; init; } = 128;
    public int VocabSize { get; init; } = 512;
    public int ContextLength { get; init; } = 128;
    public int Seed { get; init; } = 1;
    public bool TieWordEmbeddings { get; init; }
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    public int? SlidingWindow { get; init; }
    public double RmsNormEps { get; init; } = 1e-5;

    /// <summary>Well-known shapes: "tiny" (the defaults), "default" (the embedded default model), "bench-25m", "bench-125m".</summary>
    public static RandomModelSpec Preset(string name) => name switch
    {
        "tiny" => new RandomModelSpec(),
        // Quick to build and to serve on two CPU cores; the Llama 2 tokenizer sets the vocabulary (32000).
        "default" => new RandomModelSpec { Layers = 4, HiddenSize = 256, Heads = 4, KvHeads = 2, IntermediateSize = 768, VocabSize = 32000, ContextLength = 2048 },
        // ≈24M parameters with the Llama 2 vocabulary: 2·32000·256 (embeddings, untied) + 8 layers × 0.98M.
        "bench-25m" => new RandomModelSpec { Layers = 8, HiddenSize = 256, Heads = 4, KvHeads = 2, IntermediateSize = 1024, VocabSize = 32000, ContextLength = 2048 },
        // ≈125M parameters (GPT-2 small's size, Llama-shaped): 2·32000·768 (untied) + 12 layers × 6.29M. Large enough
        // that a decode step reads every weight from memory, small enough to build and measure in minutes.
        "bench-125m" => new RandomModelSpec { Layers = 12, HiddenSize = 768, Heads = 12, KvHeads = 4, IntermediateSize = 2048, VocabSize = 32000, ContextLength = 2048 },
        _ => throw new ModelBuilderException($"Unknown preset '{name}': known are tiny, default, bench-25m, bench-125m."),
    };

    public DecoderConfig ToConfig(int? vocabSize = null, int? bos = null, IReadOnlyList<int>? eos = null, int? pad = null)
    {
        if (SlidingWindow is not null && Architecture != DecoderArchitecture.Mistral)
            throw new ModelBuilderException("A sliding window is modelled for the Mistral architecture only.");
        var config = new DecoderConfig
        {
            Architecture = Architecture,
            HiddenSize = HiddenSize,
            IntermediateSize = IntermediateSize,
            NumLayers = Layers,
            NumHeads = Heads,
            NumKvHeads = KvHeads,
            HeadDim = HeadDim ?? (HiddenSize % Heads == 0 ? HiddenSize / Heads
                : throw new ModelBuilderException($"hidden size {HiddenSize} is not a multiple of {Heads} heads; give --head-dim.")),
            VocabSize = vocabSize ?? VocabSize,
            ContextLength = ContextLength,
            RmsNormEps = RmsNormEps,
            RopeTheta = RopeTheta,
            RopeScaling = RopeScaling,
            TieWordEmbeddings = TieWordEmbeddings,
            QkvBias = Architecture == DecoderArchitecture.Qwen2,
            SlidingWindow = SlidingWindow,
            BosTokenId = bos ?? 1,
            EosTokenIds = eos ?? [2],
            PadTokenId = pad,
        };
        config.Validate();
        return config;
    }

    /// <summary>A Hugging Face config.json for a config (what a random model folder carries as its config.json).</summary>
    public static JsonObject ToHuggingFaceJson(DecoderConfig config)
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(config.ArchitectureClassName),
            ["model_type"] = config.ModelType,
            ["hidden_act"] = "silu",
            ["hidden_size"] = config.HiddenSize,
            ["intermediate_size"] = config.IntermediateSize,
            ["num_hidden_layers"] = config.NumLayers,
            ["num_attention_heads"] = config.NumHeads,
            ["num_key_value_heads"] = config.NumKvHeads,
            ["head_dim"] = config.HeadDim,
            ["vocab_size"] = config.VocabSize,
            ["max_position_embeddings"] = config.ContextLength,
            ["rms_norm_eps"] = config.RmsNormEps,
            ["rope_theta"] = config.RopeTheta,
            ["tie_word_embeddings"] = config.TieWordEmbeddings,
            ["bos_token_id"] = config.BosTokenId,
            ["eos_token_id"] = config.EosTokenIds.Count == 1 ? config.EosTokenIds[0] : new JsonArray(config.EosTokenIds.Select(i => (JsonNode)i).ToArray()),
            ["torch_dtype"] = "float32",
        };
        if (config.PadTokenId is { } pad) json["pad_token_id"] = pad;
        if (config.Architecture == DecoderArchitecture.Llama) json["attention_bias"] = config.QkvBias;
        if (config.SlidingWindow is { } window)
        {
            json["sliding_window"] = window;
        }
        if (config.RopeScaling is { } s)
        {
            var scaling = new JsonObject { ["rope_type"] = s.Type, ["factor"] = s.Factor };
            if (s.OriginalMaxPositionEmbeddings is { } original) scaling["original_max_position_embeddings"] = original;
            if (s.Type == "llama3") { scaling["low_freq_factor"] = s.LowFreqFactor; scaling["high_freq_factor"] = s.HighFreqFactor; }
            if (s.Type == "yarn") { scaling["beta_fast"] = s.BetaFast; scaling["beta_slow"] = s.BetaSlow; }
            json["rope_scaling"] = scaling;
        }
        return json;
    }
}
