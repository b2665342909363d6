using System.Text.Json.Nodes;
using ChatServices.ModelBuilder.Architectures;

namespace ChatServices.ModelBuilder.Checkpoints;

/// <summary>
/// Reads a Hugging Face <c>config.json</c> into a <see cref="DecoderConfig"/>, refusing (with the reason) what the
/// builder cannot convert faithfully: other architectures, activations other than SiLU, MLP biases, rope scaling
/// types it does not implement.
/// </summary>
public static class HuggingFaceConfig
{
    public static DecoderConfig Load(string path, int? contextLength = null)
    {
        if (!File.Exists(path)) throw new ModelBuilderException($"config.json not found: {path}");
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path))?.AsObject()
                ?? throw new ModelBuilderException($"{path} is empty.");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new ModelBuilderException($"{path} is not valid JSON: {e.Message}", e);
        }
        return Parse(json, contextLength);
    }

    public static DecoderConfig Parse(JsonObject json, int? contextLength = null)
    {
        var architecture = ReadArchitecture(json);
        var activation = (string?)json["hidden_act"] ?? "silu";
        if (activation is not ("silu" or "swish"))
            throw new ModelBuilderException($"Unsupported hidden_act '{activation}': the Llama family's MLP is SwiGLU (silu).");
        if ((bool?)json["mlp_bias"] == true)
            throw new ModelBuilderException("Unsupported mlp_bias=true: MLP projections with biases are not converted.");

        var hidden = RequiredInt(json, "hidden_size");
        var heads = RequiredInt(json, "num_attention_heads");
        var kvHeads = (int?)json["num_key_value_heads"] ?? heads;
        var headDim = (int?)json["head_dim"] ?? (hidden % heads == 0
            ? hidden / heads
            : throw new ModelBuilderException($"hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}) and head_dim is not given."));
        var maxPositions = (int?)json["max_position_embeddings"] ?? 2048;
        var ropeParameters = json["rope_parameters"] as JsonObject; // newer transformers releases nest rope settings here
        var ropeTheta = (double?)json["rope_theta"] ?? (double?)ropeParameters?["rope_theta"] ?? 10000.0;
        var attentionBias = (bool?)json["attention_bias"] ?? false;

        int? slidingWindow = null;
        var window = (int?)json["sliding_window"];
        var useWindow = architecture switch
        {
            DecoderArchitecture.Mistral => window is not null,
            DecoderArchitecture.Qwen2 => (bool?)json["use_sliding_window"] ?? false,
            _ => false,
        };
        var context = contextLength ?? maxPositions;
        if (useWindow && window is { } w && w < context)
        {
            // Qwen2 applies its window only to some layers (max_window_layers), which this builder does not model.
            if (architecture == DecoderArchitecture.Qwen2)
                throw new ModelBuilderException(
                    $"Qwen2 sliding-window layers (use_sliding_window) are not converted; build with --context-length {w} or less, where they equal full attention.");
            slidingWindow = w;
        }

        var config = new DecoderConfig
        {
            Architecture = architecture,
            HiddenSize = hidden,
            IntermediateSize = RequiredInt(json, "intermediate_size"),
            NumLayers = RequiredInt(json, "num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = RequiredInt(json, "vocab_size"),
            ContextLength = context,
            RmsNormEps = (double?)json["rms_norm_eps"] ?? 1e-6,
            RopeTheta = ropeTheta,
            RopeScaling = ReadRopeScaling(json["rope_scaling"] as JsonObject ?? ropeParameters, maxPositions, context),
            TieWordEmbeddings = (bool?)json["tie_word_embeddings"] ?? false,
            QkvBias = architecture == DecoderArchitecture.Qwen2 || attentionBias,
            OutputBias = architecture != DecoderArchitecture.Qwen2 && attentionBias,
            SlidingWindow = slidingWindow,
            BosTokenId = (int?)json["bos_token_id"],
            EosTokenIds = ReadIds(json["eos_token_id"]),
            PadTokenId = (int?)json["pad_token_id"],
        };
        config.Validate();
        return config;
    }

    private static DecoderArchitecture ReadArchitecture(JsonObject json)
    {
        var names = (json["architectures"] as JsonArray)?.Select(n => (string?)n).ToList() ?? [];
        var name = names.FirstOrDefault();
        var modelType = (string?)json["model_type"];
        return (name, modelType) switch
        {
            ("LlamaForCausalLM", _) or (null, "llama") => DecoderArchitecture.Llama,
            ("MistralForCausalLM", _) or (null, "mistral") => DecoderArchitecture.Mistral,
            ("Qwen2ForCausalLM", _) or (null, "qwen2") => DecoderArchitecture.Qwen2,
            _ => throw new ModelBuilderException(
                $"Unsupported architecture '{name ?? modelType ?? "(none)"}': supported are LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM."),
        };
    }

    private static RopeScaling? ReadRopeScaling(JsonObject? scaling, int maxPositions, int context)
    {
        if (scaling is null) return null;
        var type = (string?)scaling["rope_type"] ?? (string?)scaling["type"] ?? "default";
        if (type == "default") return null;
        var factor = (double?)scaling["factor"] ?? throw new ModelBuilderException($"rope_scaling of type '{type}' has no factor.");
        var original = (int?)scaling["original_max_position_embeddings"];
        switch (type)
        {
            case "linear":
                return new RopeScaling(type, factor);
            case "llama3":
                return new RopeScaling(type, factor, original ?? throw new ModelBuilderException("llama3 rope_scaling needs original_max_position_embeddings."),
                    LowFreqFactor: (double?)scaling["low_freq_factor"] ?? 1.0,
                    HighFreqFactor: (double?)scaling["high_freq_factor"] ?? 4.0);
            case "yarn":
                return new RopeScaling(type, factor, original ?? maxPositions,
                    BetaFast: (double?)scaling["beta_fast"] ?? 32.0,
                    BetaSlow: (double?)scaling["beta_slow"] ?? 1.0,
                    AttentionFactor: (double?)scaling["attention_factor"]);
            case "dynamic":
                // Dynamic NTK rescales the frequencies for the whole sequence once it outgrows the original context, so it
                // has no fixed cos/sin table; within the original context it is the unscaled rotation.
                if (context <= (original ?? maxPositions)) return null;
                throw new ModelBuilderException(
                    $"rope_scaling 'dynamic' cannot be served beyond its original context ({original ?? maxPositions}); build with --context-length {original ?? maxPositions} or less.");
            default:
                throw new ModelBuilderException($"Unsupported rope_scaling type '{type}': supported are linear, llama3, yarn and dynamic (within the original context).");
        }
    }

    private static IReadOnlyList<int> ReadIds(JsonNode? node) => node switch
    {
        null => [],
        JsonArray array => array.Select(n => (int)n!).ToArray(),
        _ => [(int)node],
    };

    private static int RequiredInt(JsonObject json, string key) =>
        (int?)json[key] ?? throw new ModelBuilderException($"config.json lacks '{key}'.");
}
