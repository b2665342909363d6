using System.CommandLine;
using System.Globalization;
using ChatServices.ModelBuilder;
using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Folder;
using ChatServices.ModelBuilder.Quantization;

// The command line over ModelFolderBuilder. Either --checkpoint DIR (a Hugging Face config.json + *.safetensors)
// or --random [--preset NAME] with explicit dimensions; see README.md for examples.
var output = new Option<string>("--output", "-o") { Description = "The model folder to write.", Required = true };
var checkpoint = new Option<string?>("--checkpoint", "-c") { Description = "A Hugging Face checkpoint folder: config.json and model.safetensors (or shards with model.safetensors.index.json)." };
var random = new Option<bool>("--random") { Description = "Random weights with the dimensions below (tests, benchmarks, the embedded default)." };
var preset = new Option<string?>("--preset") { Description = "Random model shape: tiny (default), default (the embedded default), bench-25m." };
var tokenizer = new Option<string?>("--tokenizer") { Description = "A tokenizer.json (or its folder) to copy in; with --random it sets the vocabulary size and special tokens." };
var architecture = new Option<DecoderArchitecture?>("--architecture") { Description = "Random model architecture: Llama, Mistral or Qwen2." };
var layers = new Option<int?>("--layers") { Description = "Random: decoder layers." };
var hidden = new Option<int?>("--hidden-size") { Description = "Random: hidden size." };
var heads = new Option<int?>("--heads") { Description = "Random: attention heads." };
var kvHeads = new Option<int?>("--kv-heads") { Description = "Random: key/value heads (grouped-query attention)." };
var headDim = new Option<int?>("--head-dim") { Description = "Random: head dimension (default hidden size / heads; a multiple of 16 for ONNX Runtime's CPU attention)." };
var intermediate = new Option<int?>("--intermediate-size") { Description = "Random: MLP intermediate size." };
var vocab = new Option<int?>("--vocab-size") { Description = "Random: vocabulary size (ignored when --tokenizer is given)." };
var context = new Option<int?>("--context-length") { Description = "Longest sequence served (sizes the rotary tables). Checkpoints: default max_position_embeddings." };
var seed = new Option<int?>("--seed") { Description = "Random: weight seed." };
var tie = new Option<bool>("--tie-embeddings") { Description = "Random: the LM head shares the embedding matrix." };
var precision = new Option<Precision>("--precision") { Description = "Float32 (default) or Float16 weights, activations and KV cache.", DefaultValueFactory = _ => Precision.Float32 };
var attention = new Option<AttentionKind>("--attention") { Description = "GroupQuery (contrib ops, ONNX Runtime GenAI convention) or Standard (plain ONNX ops, position_ids input).", DefaultValueFactory = _ => AttentionKind.GroupQuery };
var int4 = new Option<bool>("--int4") { Description = "4-bit weight-only quantization of the linear layers (MatMulNBits)." };
var blockSize = new Option<int>("--int4-block-size") { Description = "Weights per 4-bit scale.", DefaultValueFactory = _ => 32 };
var asymmetric = new Option<bool>("--int4-asymmetric") { Description = "Per-block 4-bit zero points (default: symmetric)." };
var accuracy = new Option<int>("--int4-accuracy-level") { Description = "MatMulNBits accuracy_level: 0 = float32 compute, 4 = int8 activations (faster on CPU).", DefaultValueFactory = _ => 0 };
var allPositions = new Option<bool>("--all-position-logits") { Description = "Logits for every position ([batch, sequence, vocab]) instead of each row's last token only (the default: faster prefill)." };
var externalData = new Option<ExternalDataMode>("--external-data") { Description = "Auto (above 1 GiB of weights), Always or Never.", DefaultValueFactory = _ => ExternalDataMode.Auto };

var root = new RootCommand("Builds a servable ONNX decoder model folder (genai_config.json, model.onnx, tokenizer, config.json).")
{
    output, checkpoint, random, preset, tokenizer, architecture, layers, hidden, heads, kvHeads, headDim, intermediate, vocab,
    context, seed, tie, precision, attention, int4, blockSize, asymmetric, accuracy, allPositions, externalData,
};
root.SetAction(parse =>
{
    var options = new BuildOptions
    {
        Precision = parse.GetValue(precision),
        Attention = parse.GetValue(attention),
        Int4 = parse.GetValue(int4) ? new Int4Options(parse.GetValue(blockSize), !parse.GetValue(asymmetric), parse.GetValue(accuracy)) : null,
        ExternalData = parse.GetValue(externalData),
        LastTokenLogitsOnly = !parse.GetValue(allPositions),
        Progress = new SynchronousProgress(line => Console.WriteLine($"[model-builder] {line}")),
    };
    try
    {
        var outputDir = parse.GetValue(output)!;
        var checkpointDir = parse.GetValue(checkpoint);
        if (checkpointDir is not null == parse.GetValue(random))
            throw new ModelBuilderException("Give exactly one of --checkpoint DIR or --random.");
        BuildResult result;
        if (checkpointDir is not null)
        {
            result = ModelFolderBuilder.FromCheckpoint(checkpointDir, outputDir, options, parse.GetValue(context), parse.GetValue(tokenizer));
        }
        else
        {
            var spec = RandomModelSpec.Preset(parse.GetValue(preset) ?? "tiny");
            spec = spec with
            {
                Architecture = parse.GetValue(architecture) ?? spec.Architecture,
                Layers = parse.GetValue(layers) ?? spec.Layers,
                HiddenSize = parse.GetValue(hidden) ?? spec.HiddenSize,
                Heads = parse.GetValue(heads) ?? spec.Heads,
                KvHeads = parse.GetValue(kvHeads) ?? spec.KvHeads,
                HeadDim = parse.GetValue(headDim) ?? spec.HeadDim,
                IntermediateSize = parse.GetValue(intermediate) ?? spec.IntermediateSize,
                VocabSize = parse.GetValue(vocab) ?? spec.VocabSize,
                ContextLength = parse.GetValue(context) ?? spec.ContextLength,
                Seed = parse.GetValue(seed) ?? spec.Seed,
                TieWordEmbeddings = parse.GetValue(tie) || spec.TieWordEmbeddings,
            };
            result = ModelFolderBuilder.FromRandom(spec, outputDir, options, parse.GetValue(tokenizer));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"[model-builder] done: {result.ParameterCount:N0} parameters, {(result.ExternalData ? "external data" : "inline weights")}, {result.Elapsed.TotalSeconds:F1} s"));
        return 0;
    }
    catch (ModelBuilderException e)
    {
        Console.Error.WriteLine($"error: {e.Message}");
        return 2;
    }
});
return root.Parse(args).Invoke();

/// <summary>Reports on the calling thread (Progress&lt;T&gt; posts to the thread pool, which reorders console lines).</summary>
internal sealed class SynchronousProgress(Action<string> report) : IProgress<string>
{
    public void Report(string value) => report(value);
}
