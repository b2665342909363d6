namespace ChatServices.ModelBuilder.Architectures;

/// <summary>
/// Hugging Face tensor names and shapes of the Llama family (shared by Llama, Mistral and Qwen2 checkpoints).
/// Linear weights are stored [out_features, in_features].
/// </summary>
public static class LlamaTensorNames
{
    public const string Embedding = "model.embed_tokens.weight";
    public const string FinalNorm = "model.norm.weight";
    public const string LmHead = "lm_head.weight";

    public static string Layer(int layer, string suffix) => $"model.layers.{layer}.{suffix}";

    public static string InputNorm(int layer) => Layer(layer, "input_layernorm.weight");
    public static string PostAttentionNorm(int layer) => Layer(layer, "post_attention_layernorm.weight");
    public static string Attention(int layer, string projection, string kind = "weight") => Layer(layer, $"self_attn.{projection}.{kind}");
    public static string Mlp(int layer, string projection) => Layer(layer, $"mlp.{projection}.weight");

    /// <summary>Every tensor a checkpoint of <paramref name="config"/> must hold, with its expected shape.</summary>
    public static IEnumerable<(string Name, long[] Shape)> Expected(DecoderConfig config)
    {
        long h = config.HiddenSize, q = config.QueryHiddenSize, kv = config.KvHiddenSize, f = config.IntermediateSize;
        yield return (Embedding, [config.VocabSize, h]);
        for (var i = 0; i < config.NumLayers; i++)
        {
            yield return (InputNorm(i), [h]);
            yield return (Attention(i, "q_proj"), [q, h]);
            yield return (Attention(i, "k_proj"), [kv, h]);
            yield return (Attention(i, "v_proj"), [kv, h]);
            if (config.QkvBias)
            {
                yield return (Attention(i, "q_proj", "bias"), [q]);
                yield return (Attention(i, "k_proj", "bias"), [kv]);
                yield return (Attention(i, "v_proj", "bias"), [kv]);
            }
            yield return (Attention(i, "o_proj"), [h, q]);
            if (config.OutputBias) yield return (Attention(i, "o_proj", "bias"), [h]);
            yield return (PostAttentionNorm(i), [h]);
            yield return (Mlp(i, "gate_proj"), [f, h]);
            yield return (Mlp(i, "up_proj"), [f, h]);
            yield return (Mlp(i, "down_proj"), [h, f]);
        }
        yield return (FinalNorm, [h]);
        if (!config.TieWordEmbeddings) yield return (LmHead, [config.VocabSize, h]);
    }
}
