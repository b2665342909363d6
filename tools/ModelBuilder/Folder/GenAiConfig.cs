using System.Text.Json;
using System.Text.Json.Nodes;
using ChatServices.ModelBuilder.Architectures;

namespace ChatServices.ModelBuilder.Folder;

/// <summary>
/// <c>genai_config.json</c> in ONNX Runtime GenAI's schema: the model type, context length, special token ids,
/// the decoder's file, head counts and I/O names (<c>%d</c> stands for the layer index), and default search options.
/// GenAI loads a folder with it as is; the InferenceService reads the same file.
/// </summary>
public static class GenAiConfig
{
    public static JsonObject Create(DecoderConfig config, BuildOptions options, string modelFileName)
    {
        var inputs = new JsonObject
        {
            ["input_ids"] = "input_ids",
            ["attention_mask"] = "attention_mask",
        };
        if (options.Attention == AttentionKind.Standard) inputs["position_ids"] = "position_ids";
        inputs["past_key_names"] = "past_key_values.%d.key";
        inputs["past_value_names"] = "past_key_values.%d.value";

        var eos = config.EosTokenIds.Count switch
        {
            0 => (JsonNode)JsonValue.Create(2),
            1 => JsonValue.Create(config.EosTokenIds[0]),
            _ => new JsonArray(config.EosTokenIds.Select(id => (JsonNode)JsonValue.Create(id)).ToArray()),
        };

        return new JsonObject
        {
            ["model"] = new JsonObject
            {
                ["bos_token_id"] = config.BosTokenId ?? 1,
                ["context_length"] = config.ContextLength,
                ["decoder"] = new JsonObject
                {
                    ["session_options"] = new JsonObject
                    {
                        ["log_id"] = "onnxruntime-genai",
                        ["provider_options"] = new JsonArray(),
                    },
                    ["filename"] = modelFileName,
                    ["head_size"] = config.HeadDim,
                    ["hidden_size"] = config.HiddenSize,
                    ["inputs"] = inputs,
                    ["outputs"] = new JsonObject
                    {
                        ["logits"] = "logits",
                        ["present_key_names"] = "present.%d.key",
                        ["present_value_names"] = "present.%d.value",
                    },
                    ["num_attention_heads"] = config.NumHeads,
                    ["num_hidden_layers"] = config.NumLayers,
                    ["num_key_value_heads"] = config.NumKvHeads,
                },
                ["eos_token_id"] = eos,
                ["pad_token_id"] = config.PadTokenId ?? (config.EosTokenIds.Count > 0 ? config.EosTokenIds[0] : 0),
                ["type"] = config.ModelType,
                ["vocab_size"] = config.VocabSize,
            },
            ["search"] = new JsonObject
            {
                ["diversity_penalty"] = 0.0,
                ["do_sample"] = false,
                ["early_stopping"] = true,
                ["length_penalty"] = 1.0,
                ["max_length"] = config.ContextLength,
                ["min_length"] = 0,
                ["no_repeat_ngram_size"] = 0,
                ["num_beams"] = 1,
                ["num_return_sequences"] = 1,
                // GroupQueryAttention updates the cache in place when past and present share one max_length buffer.
                ["past_present_share_buffer"] = options.Attention == AttentionKind.GroupQuery,
                ["repetition_penalty"] = 1.0,
                ["temperature"] = 1.0,
                ["top_k"] = 1,
                ["top_p"] = 1.0,
            },
        };
    }

    public static void Write(string path, JsonObject json) =>
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
}
