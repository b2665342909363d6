using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Checkpoints;
using ChatServices.ModelBuilder.Quantization;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace ChatServices.ModelBuilder.Graph;

/// <summary>
/// Writes a Llama-family decoder as an ONNX graph, one layer at a time (each weight is read, converted, written and
/// dropped). The residual stream, RMSNorms, SwiGLU MLP and LM head are shared by both attention conventions;
/// <see cref="AttentionBlock"/> is what differs (GroupQueryAttention with rotary inside, or plain ONNX operators).
/// </summary>
public abstract class DecoderGraphWriter
{
    protected readonly DecoderConfig Config;
    protected readonly BuildOptions Options;
    protected readonly OnnxGraph Graph;
    private readonly ITensorSource _weights;

    protected DecoderGraphWriter(DecoderConfig config, BuildOptions options, ITensorSource weights, OnnxGraph graph)
    {
        Config = config;
        Options = options;
        _weights = weights;
        Graph = graph;
    }

    /// <summary>The element type of activations, weights and KV cache.</summary>
    protected DataType Io => Options.Precision == Precision.Float16 ? DataType.Float16 : DataType.Float;

    /// <summary>Declares the graph's inputs and the per-batch values attention needs (sequence lengths, masks).</summary>
    protected abstract void DeclareInputs();

    /// <summary>
    /// int64 [batch, 1]: the position within this step of each row's last token (used with
    /// <see cref="BuildOptions.LastTokenLogitsOnly"/>).
    /// </summary>
    protected abstract string LastTokenIndex();

    /// <summary>Self-attention of one layer on the normalised hidden states; returns the o_proj output's name.</summary>
    protected abstract string AttentionBlock(int layer, string normed);

    /// <summary>
    /// The inputs and outputs both conventions share: input_ids, attention_mask, optionally position_ids, and per
    /// layer past_key_values.{i}.key|value [batch, kv_heads, past, head_dim] → present.{i}.key|value [.., total, ..].
    /// </summary>
    protected void DeclareTokenAndCacheIO(bool positionIds)
    {
        Graph.AddInput("input_ids", DataType.Int64, "batch_size", "sequence_length");
        Graph.AddInput("attention_mask", DataType.Int64, "batch_size", "total_sequence_length");
        if (positionIds) Graph.AddInput("position_ids", DataType.Int64, "batch_size", "sequence_length");
        for (var i = 0; i < Config.NumLayers; i++)
        {
            Graph.AddInput($"past_key_values.{i}.key", Io, "batch_size", Config.NumKvHeads, "past_sequence_length", Config.HeadDim);
            Graph.AddInput($"past_key_values.{i}.value", Io, "batch_size", Config.NumKvHeads, "past_sequence_length", Config.HeadDim);
            Graph.AddOutput($"present.{i}.key", Io, "batch_size", Config.NumKvHeads, "total_sequence_length", Config.HeadDim);
            Graph.AddOutput($"present.{i}.value", Io, "batch_size", Config.NumKvHeads, "total_sequence_length", Config.HeadDim);
        }
    }

    public void Write()
    {
        if (Options.LastTokenLogitsOnly)
            Graph.AddOutput("logits", DataType.Float, "batch_size", 1, Config.VocabSize);
        else
            Graph.AddOutput("logits", DataType.Float, "batch_size", "sequence_length", Config.VocabSize);
        DeclareInputs();

        AddWeight(LlamaTensorNames.Embedding, Weight(LlamaTensorNames.Embedding, [Config.VocabSize, Config.HiddenSize]), [Config.VocabSize, Config.HiddenSize]);
        var residual = Graph.Op("Gather", "/model/embed_tokens/Gather", [LlamaTensorNames.Embedding, "input_ids"]);

        // The residual stream: SkipSimplifiedLayerNormalization adds the block output to the residual and normalises
        // in one step; its fourth output is the new residual (input + skip).
        string? pending = null;
        for (var layer = 0; layer < Config.NumLayers; layer++)
        {
            var prefix = $"/model/layers.{layer}";
            var normed = pending is null
                ? SimplifiedNorm($"{prefix}/input_layernorm", residual, LlamaTensorNames.InputNorm(layer))
                : SkipNorm($"{prefix}/input_layernorm", pending, ref residual, LlamaTensorNames.InputNorm(layer));
            var attention = AttentionBlock(layer, normed);
            var normed2 = SkipNorm($"{prefix}/post_attention_layernorm", attention, ref residual, LlamaTensorNames.PostAttentionNorm(layer));
            pending = Mlp(layer, normed2);
            Options.Progress?.Report($"layer {layer + 1}/{Config.NumLayers} written");
        }

        var final = SkipNorm("/model/norm", pending!, ref residual, LlamaTensorNames.FinalNorm);
        if (Options.LastTokenLogitsOnly)
        {
            // Only each row's last token reaches the LM head: [batch, 1, hidden]. Skips vocab × hidden work per prompt token.
            var picked = Graph.Op("GatherND", "/model/last_token/GatherND", [final, LastTokenIndex()], "", ("batch_dims", 1L));
            final = Graph.Op("Unsqueeze", "/model/last_token/Unsqueeze", [picked, Graph.Int64Constant([1], 1)]);
        }
        // A tied head re-reads the embedding rather than holding it through every layer (it can be gigabytes).
        var headWeight = Weight(Config.TieWordEmbeddings ? LlamaTensorNames.Embedding : LlamaTensorNames.LmHead, [Config.VocabSize, Config.HiddenSize]);
        var logits = Linear("/lm_head", final, "lm_head.weight", headWeight, Config.VocabSize, Config.HiddenSize, bias: null);
        if (Io == DataType.Float)
            Graph.Node("Identity", "/lm_head/Identity", [logits], ["logits"]);
        else
            Graph.Node("Cast", "/lm_head/Cast", [logits], ["logits"], "", ("to", (long)DataType.Float));
    }

    /// <summary>RMSNorm of <paramref name="input"/> with the gain <paramref name="weightName"/> (the first layer's input norm).</summary>
    protected virtual string SimplifiedNorm(string name, string input, string weightName)
    {
        AddWeight(weightName, Weight(weightName, [Config.HiddenSize]), [Config.HiddenSize]);
        return Graph.Op("SimplifiedLayerNormalization", $"{name}/SimplifiedLayerNormalization", [input, weightName], "",
            ("axis", -1L), ("epsilon", Config.RmsNormEps), ("stash_type", 1L));
    }

    /// <summary>residual += input, then RMSNorm of the new residual; returns the normalised output.</summary>
    protected virtual string SkipNorm(string name, string input, ref string residual, string weightName)
    {
        AddWeight(weightName, Weight(weightName, [Config.HiddenSize]), [Config.HiddenSize]);
        var node = $"{name}/SkipSimplifiedLayerNormalization";
        var output = $"{node}/output_0";
        var sum = $"{node}/output_3";
        Graph.Node("SkipSimplifiedLayerNormalization", node, [input, residual, weightName], [output, "", "", sum],
            OnnxGraph.MicrosoftDomain, ("epsilon", Config.RmsNormEps));
        residual = sum;
        return output;
    }

    private string Mlp(int layer, string normed)
    {
        var prefix = $"/model/layers.{layer}/mlp";
        int h = Config.HiddenSize, f = Config.IntermediateSize;
        var gate = Projection($"{prefix}/gate_proj", normed, LlamaTensorNames.Mlp(layer, "gate_proj"), f, h, null);
        var up = Projection($"{prefix}/up_proj", normed, LlamaTensorNames.Mlp(layer, "up_proj"), f, h, null);
        // SiLU(x) = x · sigmoid(x)
        var sigmoid = Graph.Op("Sigmoid", $"{prefix}/act_fn/Sigmoid", [gate]);
        var silu = Graph.Op("Mul", $"{prefix}/act_fn/Mul", [gate, sigmoid]);
        var product = Graph.Op("Mul", $"{prefix}/Mul", [silu, up]);
        return Projection($"{prefix}/down_proj", product, LlamaTensorNames.Mlp(layer, "down_proj"), h, f, null);
    }

    /// <summary>A linear layer read from the checkpoint: y = x·Wᵀ (+ b), W stored [outFeatures, inFeatures].</summary>
    protected string Projection(string name, string input, string weightName, int outFeatures, int inFeatures, string? biasName)
    {
        var weight = Weight(weightName, [outFeatures, inFeatures]);
        float[]? bias = biasName is null ? null : Weight(biasName, [outFeatures]);
        return Linear(name, input, weightName, weight, outFeatures, inFeatures, bias is null ? null : (biasName!, bias));
    }

    /// <summary>A linear layer on given weights [outFeatures, inFeatures] (float or 4-bit by the options), plus bias.</summary>
    protected string Linear(string name, string input, string weightName, float[] weight, int outFeatures, int inFeatures, (string Name, float[] Values)? bias)
    {
        string output;
        if (Options.Int4 is { } int4)
        {
            var q = Int4BlockQuantizer.Quantize(weight, outFeatures, inFeatures, int4);
            var b = $"{weightName}.MatMulNBits.qweight";
            var scales = $"{weightName}.MatMulNBits.scales";
            Graph.AddInitializer(b, DataType.Uint8, [outFeatures, q.Blocks, int4.BlockSize * int4.Bits / 8], q.Packed);
            AddWeight(scales, q.Scales, [q.Scales.Length]);
            List<string> inputs = [input, b, scales];
            if (q.ZeroPoints is not null)
            {
                var zp = $"{weightName}.MatMulNBits.qzeros";
                Graph.AddInitializer(zp, DataType.Uint8, [q.ZeroPoints.Length], q.ZeroPoints);
                inputs.Add(zp);
            }
            output = Graph.Op("MatMulNBits", $"{name}/MatMulNBits", inputs, OnnxGraph.MicrosoftDomain,
                ("K", (long)inFeatures), ("N", (long)outFeatures), ("bits", (long)int4.Bits), ("block_size", (long)int4.BlockSize),
                ("accuracy_level", (long)int4.AccuracyLevel));
        }
        else
        {
            // MatMul wants [in, out]: transpose once here rather than per step at run time.
            var transposed = new float[weight.Length];
            for (var o = 0; o < outFeatures; o++)
            for (var i = 0; i < inFeatures; i++)
                transposed[(long)i * outFeatures + o] = weight[(long)o * inFeatures + i];
            var name2 = $"{weightName}.T";
            AddWeight(name2, transposed, [inFeatures, outFeatures]);
            output = Graph.Op("MatMul", $"{name}/MatMul", [input, name2]);
        }
        if (bias is { } bb)
        {
            AddWeight(bb.Name, bb.Values, [outFeatures]);
            output = Graph.Op("Add", $"{name}/Add", [output, bb.Name]);
        }
        return output;
    }

    /// <summary>Reads a checkpoint tensor, checking its shape against the config.</summary>
    protected float[] Weight(string name, long[] expected)
    {
        var shape = _weights.Shape(name);
        if (!shape.SequenceEqual(expected))
            throw new ModelBuilderException(
                $"Shape mismatch for '{name}': the checkpoint has [{string.Join(", ", shape)}], config.json implies [{string.Join(", ", expected)}].");
        return _weights.ReadFloat32(name);
    }

    /// <summary>Writes a float initializer in the graph's element type.</summary>
    protected void AddWeight(string name, float[] values, long[] dims) =>
        Graph.AddFloatInitializer(name, dims, values, asFloat16: Io == DataType.Float16);
}
