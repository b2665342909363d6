using System.Diagnostics;
using System.Text.Json.Nodes;
using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Checkpoints;
using ChatServices.ModelBuilder.Graph;
using Google.Protobuf;
using Onnx;

namespace ChatServices.ModelBuilder.Folder;

/// <summary>What a build wrote.</summary>
public sealed record BuildResult(string OutputDirectory, DecoderConfig Config, long ParameterCount, bool ExternalData, TimeSpan Elapsed);

/// <summary>
/// Builds a model folder (DESIGN.md's layout, ONNX Runtime GenAI's too): <c>model.onnx</c> (+ <c>model.onnx.data</c>),
/// <c>genai_config.json</c>, <c>config.json</c> and the tokenizer files. Entry points for a Hugging Face checkpoint
/// folder and for random weights; both end in <see cref="Build"/>.
/// </summary>
public static class ModelFolderBuilder
{
    public const string ModelFileName = "model.onnx";
    public const string ExternalDataFileName = "model.onnx.data";

    /// <summary>
    /// Converts a Hugging Face checkpoint folder (config.json + *.safetensors, tokenizer files copied when present), or a
    /// float32 model folder this builder wrote (config.json + model.onnx).
    /// </summary>
    public static BuildResult FromCheckpoint(string checkpointDirectory, string outputDirectory, BuildOptions options,
        int? contextLength = null, string? tokenizerPath = null)
    {
        var (config, hfJson, tokenizer) = CheckpointConfig(checkpointDirectory, contextLength, tokenizerPath);
        using var weights = OpenCheckpoint(checkpointDirectory, config);
        var result = Build(config, hfJson, weights, tokenizer, outputDirectory, options);
        var generationConfig = Path.Combine(checkpointDirectory, "generation_config.json");
        if (File.Exists(generationConfig)) File.Copy(generationConfig, Path.Combine(outputDirectory, "generation_config.json"), overwrite: true);
        return result;
    }

    /// <summary>A checkpoint folder's config (generation_config.json's end tokens included) and tokenizer, checked against each other.</summary>
    public static (DecoderConfig Config, JsonObject HuggingFaceJson, TokenizerFiles? Tokenizer) CheckpointConfig(
        string checkpointDirectory, int? contextLength = null, string? tokenizerPath = null)
    {
        var configPath = Path.Combine(checkpointDirectory, "config.json");
        var config = HuggingFaceConfig.Load(configPath, contextLength);
        config = WithGenerationConfigEos(config, Path.Combine(checkpointDirectory, "generation_config.json"));
        var hfJson = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        var tokenizer = tokenizerPath is not null ? TokenizerFiles.Load(tokenizerPath)
            : File.Exists(Path.Combine(checkpointDirectory, "tokenizer.json")) ? TokenizerFiles.Load(checkpointDirectory) : null;
        if (tokenizer is not null && tokenizer.VocabSize > config.VocabSize)
            throw new ModelBuilderException($"The tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {config.VocabSize}.");
        return (config, hfJson, tokenizer);
    }

    /// <summary>The checkpoint's weights, checked against its config.</summary>
    public static ITensorSource OpenCheckpoint(string checkpointDirectory, DecoderConfig config)
    {
        // A float32 folder this builder wrote stands in for its checkpoint (to rebuild it quantized, for instance).
        ITensorSource weights = ModelFolderCheckpoint.IsModelFolder(checkpointDirectory)
            ? ModelFolderCheckpoint.Open(checkpointDirectory, config)
            : SafetensorsCheckpoint.Open(checkpointDirectory);
        try
        {
            CheckTensors(config, weights);
            return weights;
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>A random model; with a tokenizer the vocabulary size and special token ids follow it.</summary>
    public static BuildResult FromRandom(RandomModelSpec spec, string outputDirectory, BuildOptions options, string? tokenizerPath = null)
    {
        var (config, tokenizer) = RandomConfig(spec, tokenizerPath);
        using var weights = new RandomCheckpoint(config, spec.Seed);
        return Build(config, RandomModelSpec.ToHuggingFaceJson(config), weights, tokenizer, outputDirectory, options);
    }

    /// <summary>A random model's config: with a tokenizer the vocabulary size and special token ids follow it.</summary>
    public static (DecoderConfig Config, TokenizerFiles? Tokenizer) RandomConfig(RandomModelSpec spec, string? tokenizerPath)
    {
        var tokenizer = tokenizerPath is null ? null : TokenizerFiles.Load(tokenizerPath);
        if (tokenizer is null) return (spec.ToConfig(), null);
        // Tokenizers without a BOS token (Qwen's) get the convention of their model configs: <|endoftext|>, their pad.
        var eos = tokenizer.SpecialTokenId("eos_token");
        var pad = tokenizer.SpecialTokenId("pad_token");
        var bos = tokenizer.SpecialTokenId("bos_token") ?? pad ?? eos;
        return (spec.ToConfig(tokenizer.VocabSize, bos, eos is { } e ? [e] : null, pad), tokenizer);
    }

    public static BuildResult Build(DecoderConfig config, JsonObject huggingFaceConfig, ITensorSource weights,
        TokenizerFiles? tokenizer, string outputDirectory, BuildOptions options)
    {
        var clock = Stopwatch.StartNew();
        config.Validate();
        options.Int4?.Validate();
        Directory.CreateDirectory(outputDirectory);
        var modelPath = Path.Combine(outputDirectory, ModelFileName);
        var dataPath = Path.Combine(outputDirectory, ExternalDataFileName);
        if (File.Exists(dataPath)) File.Delete(dataPath);

        var bytesPerWeight = options.Precision == Precision.Float16 ? 2 : 4;
        var estimate = config.ParameterCount * bytesPerWeight;
        var external = options.ExternalData switch
        {
            ExternalDataMode.Always => true,
            ExternalDataMode.Never => false,
            _ => estimate > options.ExternalDataThresholdBytes,
        };
        if (!external && estimate > int.MaxValue - (64L << 20))
            throw new ModelBuilderException($"The weights (~{estimate >> 20} MiB) exceed protobuf's 2 GB limit; use external data.");
        options.Progress?.Report(
            $"{config.ArchitectureClassName}: {config.NumLayers} layers, hidden {config.HiddenSize}, {config.NumHeads} heads / {config.NumKvHeads} kv of {config.HeadDim}, vocab {config.VocabSize}, {config.ParameterCount:N0} parameters");

        ModelProto model;
        using (var store = external ? TensorStore.External(dataPath) : TensorStore.Inline())
        {
            var graph = new OnnxGraph(store);
            DecoderGraphWriter writer = options.Attention switch
            {
                AttentionKind.GroupQuery => new GroupQueryAttentionGraph(config, options, weights, graph),
                _ => new StandardAttentionGraph(config, options, weights, graph),
            };
            writer.Write();
            model = new ModelProto
            {
                IrVersion = 10,
                ProducerName = "ChatServices.ModelBuilder",
                ProducerVersion = BuilderVersion,
                Graph = graph.Proto,
            };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 21 });
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = OnnxGraph.MicrosoftDomain, Version = 1 });
        }
        using (var file = File.Create(modelPath))
        {
            model.WriteTo(file);
        }

        GenAiConfig.Write(Path.Combine(outputDirectory, "genai_config.json"), GenAiConfig.Create(config, options, ModelFileName));
        File.WriteAllText(Path.Combine(outputDirectory, "config.json"),
            huggingFaceConfig.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
        tokenizer?.CopyTo(outputDirectory);
        options.Progress?.Report($"wrote {outputDirectory} in {clock.Elapsed.TotalSeconds:F1} s");
        return new BuildResult(outputDirectory, config, config.ParameterCount, external, clock.Elapsed);
    }

    /// <summary>
    /// Chat checkpoints often list their end-of-turn tokens only in generation_config.json (Llama 3 Instruct's
    /// &lt;|eot_id|&gt;); generation must stop on those too.
    /// </summary>
    private static DecoderConfig WithGenerationConfigEos(DecoderConfig config, string path)
    {
        if (!File.Exists(path)) return config;
        var eos = JsonNode.Parse(File.ReadAllText(path))?["eos_token_id"] switch
        {
            JsonArray array => array.Select(n => (int)n!).ToArray(),
            JsonValue value => [(int)value],
            _ => [],
        };
        return config with { EosTokenIds = config.EosTokenIds.Concat(eos).Distinct().ToArray() };
    }

    /// <summary>The builder's version, part of the embedded default model's cache key.</summary>
    public static string BuilderVersion =>
        typeof(ModelFolderBuilder).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>Fails before writing anything when the checkpoint lacks a tensor or has one of the wrong shape.</summary>
    private static void CheckTensors(DecoderConfig config, ITensorSource weights)
    {
        foreach (var (name, shape) in LlamaTensorNames.Expected(config))
        {
            if (!weights.Contains(name))
            {
                var hint = name == LlamaTensorNames.LmHead ? " (set tie_word_embeddings to true if the LM head shares the embedding)" : "";
                throw new ModelBuilderException($"Tensor '{name}' is missing from the checkpoint{hint}.");
            }
            var actual = weights.Shape(name);
            if (!actual.SequenceEqual(shape))
                throw new ModelBuilderException(
                    $"Shape mismatch for '{name}': the checkpoint has [{string.Join(", ", actual)}], config.json implies [{string.Join(", ", shape)}].");
        }
    }
}
