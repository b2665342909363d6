using System.Text.Json.Nodes;
using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Checkpoints;

namespace ChatServices.ModelBuilder.Tests.Checkpoints;

/// <summary>config.json files shaped like published checkpoints' parse into the graph-shaping settings they imply.</summary>
public sealed class HuggingFaceConfigTests
{
    private static DecoderConfig Parse(string json, int? context = null) => HuggingFaceConfig.Parse(JsonNode.Parse(json)!.AsObject(), context);

    [Fact]
    public void Llama_3_2_style_config_has_llama3_rope_scaling_tied_embeddings_and_eos_list()
    {
        var c = Parse("""
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": false, "mlp_bias": false,
             "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 64, "hidden_act": "silu",
             "hidden_size": 2048, "intermediate_size": 8192, "max_position_embeddings": 131072, "num_attention_heads": 32,
             "num_hidden_layers": 16, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
             "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
             "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "vocab_size": 128256}
            """, context: 8192);
        Assert.Equal(DecoderArchitecture.Llama, c.Architecture);
        Assert.Equal((32, 8, 64, 8192), (c.NumHeads, c.NumKvHeads, c.HeadDim, c.ContextLength));
        Assert.Equal(new RopeScaling("llama3", 32, 8192, 1, 4), c.RopeScaling);
        Assert.True(c.TieWordEmbeddings);
        Assert.False(c.QkvBias);
        Assert.Equal([128001, 128008, 128009], c.EosTokenIds);
        Assert.InRange(c.ParameterCount, 1_200_000_000, 1_300_000_000);
    }

    [Fact]
    public void Qwen2_5_style_config_has_qkv_bias_and_no_window()
    {
        var c = Parse("""
            {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "bos_token_id": 151643, "eos_token_id": 151645,
             "hidden_act": "silu", "hidden_size": 896, "intermediate_size": 4864, "max_position_embeddings": 32768,
             "max_window_layers": 21, "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
             "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
             "torch_dtype": "bfloat16", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
            """);
        Assert.Equal(DecoderArchitecture.Qwen2, c.Architecture);
        Assert.True(c.QkvBias);
        Assert.False(c.OutputBias);
        Assert.Null(c.SlidingWindow);
        Assert.Equal(64, c.HeadDim);
        Assert.Equal(32768, c.ContextLength);
        Assert.Equal([151645], c.EosTokenIds);
    }

    [Fact]
    public void Mistral_7b_v0_1_style_config_keeps_its_sliding_window_and_v0_3_has_none()
    {
        const string common = """
            "architectures": ["MistralForCausalLM"], "model_type": "mistral", "bos_token_id": 1, "eos_token_id": 2,
            "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 32768,
            "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
            "tie_word_embeddings": false, "vocab_size": 32000
            """;
        var v01 = Parse("{" + common + """, "rope_theta": 10000.0, "sliding_window": 4096}""");
        Assert.Equal(4096, v01.SlidingWindow);
        var v03 = Parse("{" + common + """, "rope_theta": 1000000.0, "sliding_window": null}""");
        Assert.Null(v03.SlidingWindow);
        Assert.Null(Parse("{" + common + """, "sliding_window": 4096}""", context: 4096).SlidingWindow);
    }

    [Fact]
    public void Heads_that_do_not_group_evenly_are_refused()
    {
        var e = Assert.Throws<ModelBuilderException>(() => Parse("""
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
             "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 10}
            """));
        Assert.Contains("multiple of num_key_value_heads", e.Message);
    }
}
