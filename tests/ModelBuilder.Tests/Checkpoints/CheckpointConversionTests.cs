using System.Text.Json.Nodes;
using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Folder;
using ChatServices.ModelBuilder.Tests.Reference;
using ChatServices.ModelBuilder.Tests.Runtime;

namespace ChatServices.ModelBuilder.Tests.Checkpoints;

/// <summary>
/// Hugging Face checkpoints the test writes itself (config.json + safetensors, one file or shards; F32, F16, BF16)
/// convert into folders whose logits match the reference decoder run on the stored weights; broken checkpoints fail
/// with errors that name the problem.
/// </summary>
public sealed class CheckpointConversionTests
{
    private static JsonObject Config(string architecture, string modelType, bool tied = false, JsonObject? extra = null)
    {
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(architecture),
            ["model_type"] = modelType,
            ["hidden_act"] = "silu",
            ["hidden_size"] = 64,
            ["intermediate_size"] = 96,
            ["num_hidden_layers"] = 2,
            ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2,
            ["vocab_size"] = 300,
            ["max_position_embeddings"] = 64,
            ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 10000.0,
            ["tie_word_embeddings"] = tied,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["torch_dtype"] = "bfloat16",
        };
        foreach (var (k, v) in extra ?? []) config[k] = v?.DeepClone();
        return config;
    }

    /// <summary>Random tensors for a config, drawn here (not by the builder), with their shapes.</summary>
    private static Dictionary<string, (long[] Shape, float[] Values)> RandomTensors(JsonObject config, int seed)
    {
        int h = (int)config["hidden_size"]!, f = (int)config["intermediate_size"]!, v = (int)config["vocab_size"]!;
        int heads = (int)config["num_attention_heads"]!, kvHeads = (int)config["num_key_value_heads"]!;
        int d = h / heads, layers = (int)config["num_hidden_layers"]!;
        var qwen = (string)config["model_type"]! == "qwen2";
        var attentionBias = (bool?)config["attention_bias"] ?? false;
        var random = new Random(seed);
        var tensors = new Dictionary<string, (long[], float[])>();
        void Add(string name, double std, double mean, params long[] shape)
        {
            var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (var i = 0; i < values.Length; i++) values[i] = (float)(mean + std * (random.NextDouble() * 2 - 1) * Math.Sqrt(3));
            tensors[name] = (shape, values);
        }
        Add("model.embed_tokens.weight", 1, 0, v, h);
        for (var l = 0; l < layers; l++)
        {
            var p = $"model.layers.{l}.";
            Add(p + "input_layernorm.weight", 0.1, 1, h);
            Add(p + "self_attn.q_proj.weight", 1 / Math.Sqrt(h), 0, heads * d, h);
            Add(p + "self_attn.k_proj.weight", 1 / Math.Sqrt(h), 0, kvHeads * d, h);
            Add(p + "self_attn.v_proj.weight", 1 / Math.Sqrt(h), 0, kvHeads * d, h);
            if (qwen || attentionBias)
            {
                Add(p + "self_attn.q_proj.bias", 0.1, 0, heads * d);
                Add(p + "self_attn.k_proj.bias", 0.1, 0, kvHeads * d);
                Add(p + "self_attn.v_proj.bias", 0.1, 0, kvHeads * d);
            }
            Add(p + "self_attn.o_proj.weight", 1 / Math.Sqrt(heads * d), 0, h, heads * d);
            if (attentionBias) Add(p + "self_attn.o_proj.bias", 0.1, 0, h);
            Add(p + "post_attention_layernorm.weight", 0.1, 1, h);
            Add(p + "mlp.gate_proj.weight", 1 / Math.Sqrt(h), 0, f, h);
            Add(p + "mlp.up_proj.weight", 1 / Math.Sqrt(h), 0, f, h);
            Add(p + "mlp.down_proj.weight", 1 / Math.Sqrt(f), 0, h, f);
        }
        Add("model.norm.weight", 0.1, 1, h);
        if (!((bool?)config["tie_word_embeddings"] ?? false)) Add("lm_head.weight", 1 / Math.Sqrt(h), 0, v, h);
        return tensors;
    }

    private static void WriteCheckpoint(string dir, JsonObject config, Dictionary<string, (long[] Shape, float[] Values)> tensors, string dtype, int shards)
    {
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        SafetensorsFile.Write(dir, tensors, dtype, shards);
    }

    [Theory]
    [InlineData("LlamaForCausalLM", "llama", "F32", 1, false)]
    [InlineData("LlamaForCausalLM", "llama", "BF16", 3, false)]
    [InlineData("LlamaForCausalLM", "llama", "F16", 2, true)]
    [InlineData("MistralForCausalLM", "mistral", "BF16", 1, false)]
    [InlineData("Qwen2ForCausalLM", "qwen2", "BF16", 2, true)]
    [InlineData("Qwen2ForCausalLM", "qwen2", "F32", 1, false)]
    public void Converted_checkpoint_matches_the_reference_on_its_stored_weights(string architecture, string modelType, string dtype, int shards, bool tied)
    {
        using var checkpoint = new TempFolder();
        using var output = new TempFolder();
        var config = Config(architecture, modelType, tied);
        var tensors = RandomTensors(config, seed: shards * 10 + dtype.Length);
        WriteCheckpoint(checkpoint.Path, config, tensors, dtype, shards);

        var result = ModelFolderBuilder.FromCheckpoint(checkpoint.Path, output.Path, new BuildOptions());
        Assert.Equal(modelType, result.Config.ModelType);

        // The reference runs on the values as stored (rounded to the checkpoint's dtype).
        var stored = tensors.ToDictionary(t => t.Key, t => SafetensorsFile.RoundTo(dtype, t.Value.Values));
        var reference = new ReferenceDecoder(TestModels.ReadConfig(output.Path), name => stored[name]);
        using var runner = new OnnxDecoderRunner(Path.Combine(output.Path, "model.onnx"), 1, shareBuffer: true, maxLength: 64);

        var prompt = TestModels.Tokens(6, 300, 5);
        var worst = TestModels.WorstErrorAgainstReference(reference, runner, prompt, decodeSteps: 4);
        Assert.True(worst < 1e-4, $"worst relative error {worst:E2}");
        Assert.Equal(config.ToJsonString(), TestModels.ReadConfig(output.Path).ToJsonString());
    }

    [Fact]
    public void Llama_attention_bias_adds_q_k_v_and_o_biases()
    {
        using var checkpoint = new TempFolder();
        using var output = new TempFolder();
        var config = Config("LlamaForCausalLM", "llama", extra: new JsonObject { ["attention_bias"] = true });
        var tensors = RandomTensors(config, 77);
        WriteCheckpoint(checkpoint.Path, config, tensors, "F32", 1);
        var result = ModelFolderBuilder.FromCheckpoint(checkpoint.Path, output.Path, new BuildOptions());
        Assert.True(result.Config.QkvBias && result.Config.OutputBias);

        var reference = new ReferenceDecoder(TestModels.ReadConfig(output.Path), name => tensors[name].Values);
        using var runner = new OnnxDecoderRunner(Path.Combine(output.Path, "model.onnx"), 1, shareBuffer: true, maxLength: 64);
        var worst = TestModels.WorstErrorAgainstReference(reference, runner, TestModels.Tokens(6, 300, 3), decodeSteps: 3);
        Assert.True(worst < 1e-4, $"worst relative error {worst:E2}");
    }

    [Fact]
    public void Generation_config_eos_ids_join_the_config_eos_ids()
    {
        using var checkpoint = new TempFolder();
        using var output = new TempFolder();
        var config = Config("LlamaForCausalLM", "llama");
        WriteCheckpoint(checkpoint.Path, config, RandomTensors(config, 5), "F32", 1);
        File.WriteAllText(Path.Combine(checkpoint.Path, "generation_config.json"), """{"bos_token_id": 1, "eos_token_id": [2, 7, 9]}""");
        ModelFolderBuilder.FromCheckpoint(checkpoint.Path, output.Path, new BuildOptions());
        var genai = JsonNode.Parse(File.ReadAllText(Path.Combine(output.Path, "genai_config.json")))!;
        Assert.Equal("[2,7,9]", genai["model"]!["eos_token_id"]!.ToJsonString());
        Assert.True(File.Exists(Path.Combine(output.Path, "generation_config.json")));
    }

    [Fact]
    public void Llama3_rope_scaling_from_config_json_matches_the_reference()
    {
        using var checkpoint = new TempFolder();
        using var output = new TempFolder();
        var config = Config("LlamaForCausalLM", "llama", extra: new JsonObject
        {
            ["rope_theta"] = 500000.0,
            ["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0,
                ["original_max_position_embeddings"] = 16,
            },
        });
        var tensors = RandomTensors(config, 99);
        WriteCheckpoint(checkpoint.Path, config, tensors, "F32", 1);
        var result = ModelFolderBuilder.FromCheckpoint(checkpoint.Path, output.Path, new BuildOptions());
        Assert.Equal("llama3", result.Config.RopeScaling?.Type);

        var reference = new ReferenceDecoder(TestModels.ReadConfig(output.Path), name => tensors[name].Values);
        using var runner = new OnnxDecoderRunner(Path.Combine(output.Path, "model.onnx"), 1, shareBuffer: false);
        var prompt = TestModels.Tokens(40, 300, 7); // beyond the original context, where the scaling matters
        var worst = TestModels.WorstErrorAgainstReference(reference, runner, prompt, decodeSteps: 2);
        Assert.True(worst < 1e-4, $"worst relative error {worst:E2}");
    }

    [Fact]
    public void Unsupported_architecture_is_refused_by_name()
    {
        using var checkpoint = new TempFolder();
        using var output = new TempFolder();
        var config = Config("GPT2LMHeadModel", "gpt2");
        WriteCheckpoint(checkpoint.Path, config, RandomTensors(Config("LlamaForCausalLM", "llama"), 1), "F32", 1);
        var e = Assert.Throws<ModelBuilderException>(() => ModelFolderBuilder.FromCheckpoint(checkpoint.Path, output.Path, new BuildOptions()));
        Assert.Contains("Unsupported architecture 'GPT2LMHeadModel'", e.Message);
        Assert.Contains("LlamaForCausalLM", e.Message);
    }

    [Fact]
    public void Missing_tensor_is_named_before_anything_is_written()
    {
        using var checkpoint = new TempFolder();
        using var output = new TempFolder();
        var config = Config("LlamaForCausalLM", "llama");
        var tensors = RandomTensors(config, 1);
        tensors.Remove("model.layers.1.mlp.up_proj.weight");
        WriteCheckpoint(checkpoint.Path, config, tensors, "F32", 2);
        var e = Assert.Throws<ModelBuilderException>(() => ModelFolderBuilder.FromCheckpoint(checkpoint.Path, output.Path, new BuildOptions()));
        Assert.Contains("'model.layers.1.mlp.up_proj.weight' is missing", e.Message);
        Assert.False(File.Exists(Path.Combine(output.Path, "model.onnx")));
    }

    [Fact]
    public void Untied_config_without_lm_head_suggests_tie_word_embeddings()
    {
        using var checkpoint = new TempFolder();
        using var output = new TempFolder();
        var tensors = RandomTensors(Config("LlamaForCausalLM", "llama", tied: true), 1);
        WriteCheckpoint(checkpoint.Path, Config("LlamaForCausalLM", "llama", tied: false), tensors, "F32", 1);
        var e = Assert.Throws<ModelBuilderException>(() => ModelFolderBuilder.FromCheckpoint(checkpoint.Path, output.Path, new BuildOptions()));
        Assert.Contains("lm_head.weight", e.Message);
        Assert.Contains("tie_word_embeddings", e.Message);
    }

    [Fact]
    public void Shape_mismatch_reports_both_shapes()
    {
        using var checkpoint = new TempFolder();
        using var output = new TempFolder();
        var config = Config("LlamaForCausalLM", "llama");
        var tensors = RandomTensors(config, 1);
        config["intermediate_size"] = 128; // the tensors were drawn for 96
        WriteCheckpoint(checkpoint.Path, config, tensors, "F32", 1);
        var e = Assert.Throws<ModelBuilderException>(() => ModelFolderBuilder.FromCheckpoint(checkpoint.Path, output.Path, new BuildOptions()));
        Assert.Contains("Shape mismatch for 'model.layers.0.mlp.gate_proj.weight'", e.Message);
        Assert.Contains("[96, 64]", e.Message);
        Assert.Contains("[128, 64]", e.Message);
    }

    [Fact]
    public void Unsupported_activation_and_rope_type_are_refused()
    {
        var gelu = Config("LlamaForCausalLM", "llama", extra: new JsonObject { ["hidden_act"] = "gelu" });
        Assert.Contains("hidden_act 'gelu'", Assert.Throws<ModelBuilderException>(() => Checkpoints_Parse(gelu)).Message);
        var longrope = Config("LlamaForCausalLM", "llama", extra: new JsonObject { ["rope_scaling"] = new JsonObject { ["rope_type"] = "longrope", ["factor"] = 2.0 } });
        Assert.Contains("rope_scaling type 'longrope'", Assert.Throws<ModelBuilderException>(() => Checkpoints_Parse(longrope)).Message);
    }

    [Fact]
    public void Qwen2_sliding_window_layers_are_refused_unless_the_context_fits_the_window()
    {
        var config = Config("Qwen2ForCausalLM", "qwen2", extra: new JsonObject { ["use_sliding_window"] = true, ["sliding_window"] = 32 });
        Assert.Contains("use_sliding_window", Assert.Throws<ModelBuilderException>(() => Checkpoints_Parse(config)).Message);
        Assert.Null(ModelBuilder.Checkpoints.HuggingFaceConfig.Parse(config, contextLength: 32).SlidingWindow);
    }

    [Fact]
    public void Sharded_index_pointing_at_the_wrong_shard_is_reported()
    {
        using var checkpoint = new TempFolder();
        using var output = new TempFolder();
        var config = Config("LlamaForCausalLM", "llama");
        WriteCheckpoint(checkpoint.Path, config, RandomTensors(config, 1), "F32", 2);
        var indexPath = Path.Combine(checkpoint.Path, "model.safetensors.index.json");
        var index = JsonNode.Parse(File.ReadAllText(indexPath))!.AsObject();
        var map = index["weight_map"]!.AsObject();
        var actual = map["model.norm.weight"]!.GetValue<string>();
        map["model.norm.weight"] = actual == "model-00001-of-00002.safetensors" ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
        File.WriteAllText(indexPath, index.ToJsonString());
        var e = Assert.Throws<ModelBuilderException>(() => ModelFolderBuilder.FromCheckpoint(checkpoint.Path, output.Path, new BuildOptions()));
        Assert.Contains("model.norm.weight", e.Message);
    }

    private static DecoderConfig Checkpoints_Parse(JsonObject config) => ModelBuilder.Checkpoints.HuggingFaceConfig.Parse(config);
}
