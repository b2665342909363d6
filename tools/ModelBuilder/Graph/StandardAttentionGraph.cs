using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Checkpoints;
using DataType = Onnx.TensorProto.Types.DataType;

namespace ChatServices.ModelBuilder.Graph;

/// <summary>
/// The decoder in plain ONNX operators (no contrib ops), in Hugging Face Optimum's convention: inputs
/// <c>input_ids</c> [batch, seq], <c>attention_mask</c> [batch, past + seq], <c>position_ids</c> [batch, seq],
/// <c>past_key_values.{i}.key|value</c> [batch, kv_heads, past, head_dim]; outputs <c>logits</c> and
/// <c>present.{i}.key|value</c> = past ‖ new along the sequence axis.
/// Query s sits at index past + s of the key axis and sees key j when j ≤ past + s, attention_mask[b, j] = 1 and (with a
/// sliding window W) past + s − j &lt; W. Rotary angles come from position_ids. Scores, mask and softmax are float32
/// whatever the graph's element type. Grouped-query attention folds each key/value head's query heads into the
/// sequence axis ([batch, kv_heads, group·seq, head_dim]) so keys and values are never repeated.
/// </summary>
public sealed class StandardAttentionGraph(DecoderConfig config, BuildOptions options, ITensorSource weights, OnnxGraph graph)
    : DecoderGraphWriter(config, options, weights, graph)
{
    private const string Cos = "cos_table";
    private const string Sin = "sin_table";
    private string _mask = "";
    private string _cos = "", _sin = "";

    private int Group => Config.NumHeads / Config.NumKvHeads;

    protected override void DeclareInputs()
    {
        if (Options.Int4 is not null)
            throw new ModelBuilderException("4-bit quantization uses the MatMulNBits contrib op; combine it with --attention GroupQuery.");
        DeclareTokenAndCacheIO(positionIds: true);

        // Rotary tables at full head width (cos/sin repeated over both halves), gathered once by position_ids and
        // shaped [batch, seq, 1, head_dim] to broadcast over heads.
        var (cos, sin) = RotaryTables.Build(Config);
        var half = Config.HeadDim / 2;
        float[] Full(float[] table)
        {
            var full = new float[Config.ContextLength * Config.HeadDim];
            for (var p = 0; p < Config.ContextLength; p++)
            for (var i = 0; i < half; i++)
                full[p * Config.HeadDim + i] = full[p * Config.HeadDim + half + i] = table[p * half + i];
            return full;
        }
        AddWeight(Cos, Full(cos), [Config.ContextLength, Config.HeadDim]);
        AddWeight(Sin, Full(sin), [Config.ContextLength, Config.HeadDim]);
        const string rotary = "/model/rotary_emb";
        var axis2 = Graph.Int64Constant([1], 2);
        _cos = Graph.Op("Unsqueeze", $"{rotary}/cos/Unsqueeze", [Graph.Op("Gather", $"{rotary}/cos/Gather", [Cos, "position_ids"]), axis2]);
        _sin = Graph.Op("Unsqueeze", $"{rotary}/sin/Unsqueeze", [Graph.Op("Gather", $"{rotary}/sin/Gather", [Sin, "position_ids"]), axis2]);

        // The additive mask [batch, 1, group·seq, total], shared by every layer.
        const string m = "/model/attn_mask";
        var scalarZero = Graph.Int64Constant([], 0);
        var scalarOne = Graph.Int64Constant([], 1);
        var total = Graph.Op("Gather", $"{m}/total/Gather", [Graph.Op("Shape", $"{m}/total/Shape", ["attention_mask"]), scalarOne], "", ("axis", 0L));
        var seq = Graph.Op("Gather", $"{m}/seq/Gather", [Graph.Op("Shape", $"{m}/seq/Shape", ["input_ids"]), scalarOne], "", ("axis", 0L));
        var past = Graph.Op("Sub", $"{m}/past/Sub", [total, seq]);
        var keyIndex = Graph.Op("Unsqueeze", $"{m}/key/Unsqueeze", [Graph.Op("Range", $"{m}/key/Range", [scalarZero, total, scalarOne]), Graph.Int64Constant([1], 0)]);
        var queryIndex = Graph.Op("Unsqueeze", $"{m}/query/Unsqueeze", [Graph.Op("Range", $"{m}/query/Range", [past, total, scalarOne]), Graph.Int64Constant([1], 1)]);
        var allowed = Graph.Op("LessOrEqual", $"{m}/causal/LessOrEqual", [keyIndex, queryIndex]); // [seq, total]
        if (Config.SlidingWindow is { } window)
        {
            var earliest = Graph.Op("Sub", $"{m}/window/Sub", [queryIndex, Graph.Int64Constant([], window)]);
            var inWindow = Graph.Op("Greater", $"{m}/window/Greater", [keyIndex, earliest]);
            allowed = Graph.Op("And", $"{m}/window/And", [allowed, inWindow]);
        }
        var causal4 = Graph.Op("Unsqueeze", $"{m}/causal/Unsqueeze", [allowed, Graph.Int64Constant([2], 0, 1)]);
        var padding = Graph.Op("Cast", $"{m}/padding/Cast", ["attention_mask"], "", ("to", (long)DataType.Bool));
        var padding4 = Graph.Op("Unsqueeze", $"{m}/padding/Unsqueeze", [padding, Graph.Int64Constant([2], 1, 2)]);
        var both = Graph.Op("And", $"{m}/And", [causal4, padding4]); // [batch, 1, seq, total]
        var zero = ScalarFloat("/model/constants/FLOAT/0", 0f);
        var lowest = ScalarFloat("/model/constants/FLOAT/lowest", float.MinValue);
        var additive = Graph.Op("Where", $"{m}/Where", [both, zero, lowest]);
        _mask = Group == 1 ? additive : Graph.Op("Tile", $"{m}/Tile", [additive, Graph.Int64Constant([4], 1, 1, Group, 1)]);
    }

    /// <summary>Optimum's convention pads on the left, so every row ends at the step's last position: [batch, 1] of seq − 1.</summary>
    protected override string LastTokenIndex()
    {
        const string prefix = "/model/last_token";
        var shape = Graph.Op("Shape", $"{prefix}/Shape", ["input_ids"]);
        var batch = Graph.Op("Slice", $"{prefix}/batch/Slice", [shape, Graph.Int64Constant([1], 0), Graph.Int64Constant([1], 1)]);
        var seq = Graph.Op("Slice", $"{prefix}/seq/Slice", [shape, Graph.Int64Constant([1], 1), Graph.Int64Constant([1], 2)]);
        var last = Graph.Op("Sub", $"{prefix}/Sub", [seq, Graph.Int64Constant([1], 1)]);
        var dims = Graph.Op("Concat", $"{prefix}/Concat", [batch, Graph.Int64Constant([1], 1)], "", ("axis", 0L));
        return Graph.Op("Expand", $"{prefix}/Expand", [Graph.Op("Unsqueeze", $"{prefix}/index/Unsqueeze", [last, Graph.Int64Constant([1], 0)]), dims]);
    }

    protected override string AttentionBlock(int layer, string normed)
    {
        var prefix = $"/model/layers.{layer}/attn";
        int h = Config.HiddenSize, q = Config.QueryHiddenSize, kv = Config.KvHiddenSize, d = Config.HeadDim;
        string? Bias(string projection) => Config.QkvBias ? LlamaTensorNames.Attention(layer, projection, "bias") : null;
        var query = Projection($"{prefix}/q_proj", normed, LlamaTensorNames.Attention(layer, "q_proj"), q, h, Bias("q_proj"));
        var key = Projection($"{prefix}/k_proj", normed, LlamaTensorNames.Attention(layer, "k_proj"), kv, h, Bias("k_proj"));
        var value = Projection($"{prefix}/v_proj", normed, LlamaTensorNames.Attention(layer, "v_proj"), kv, h, Bias("v_proj"));

        // [batch, seq, heads, d], rotated.
        var q4 = Rotate($"{prefix}/q", Graph.Op("Reshape", $"{prefix}/q/Reshape", [query, Graph.Int64Constant([4], 0, 0, Config.NumHeads, d)]));
        var k4 = Rotate($"{prefix}/k", Graph.Op("Reshape", $"{prefix}/k/Reshape", [key, Graph.Int64Constant([4], 0, 0, Config.NumKvHeads, d)]));
        var v4 = Graph.Op("Reshape", $"{prefix}/v/Reshape", [value, Graph.Int64Constant([4], 0, 0, Config.NumKvHeads, d)]);

        // present = past ‖ new: [batch, kv_heads, total, d]
        var kNew = Graph.Op("Transpose", $"{prefix}/k/Transpose", [k4], "", ("perm", new long[] { 0, 2, 1, 3 }));
        var vNew = Graph.Op("Transpose", $"{prefix}/v/Transpose", [v4], "", ("perm", new long[] { 0, 2, 1, 3 }));
        var presentKey = $"present.{layer}.key";
        var presentValue = $"present.{layer}.value";
        Graph.Node("Concat", $"{prefix}/k/Concat", [$"past_key_values.{layer}.key", kNew], [presentKey], "", ("axis", 2L));
        Graph.Node("Concat", $"{prefix}/v/Concat", [$"past_key_values.{layer}.value", vNew], [presentValue], "", ("axis", 2L));

        // Queries grouped under their key/value head: [batch, kv_heads, group·seq, d] (row g·seq + s).
        var q5 = Graph.Op("Reshape", $"{prefix}/q/group/Reshape", [q4, Graph.Int64Constant([5], 0, 0, Config.NumKvHeads, Group, d)]);
        var qt = Graph.Op("Transpose", $"{prefix}/q/group/Transpose", [q5], "", ("perm", new long[] { 0, 2, 3, 1, 4 }));
        var qg = Graph.Op("Reshape", $"{prefix}/q/group/Reshape2", [qt, Graph.Int64Constant([4], 0, 0, -1, d)]);

        var kT = Graph.Op("Transpose", $"{prefix}/k/TransposeForScores", [presentKey], "", ("perm", new long[] { 0, 1, 3, 2 }));
        var scores = Graph.Op("MatMul", $"{prefix}/scores/MatMul", [qg, kT]);
        if (Io != DataType.Float) scores = Graph.Op("Cast", $"{prefix}/scores/Cast", [scores], "", ("to", (long)DataType.Float));
        var scaled = Graph.Op("Mul", $"{prefix}/scores/Mul", [scores, ScalarFloat($"{prefix}/scale", (float)(1.0 / Math.Sqrt(d)))]);
        var masked = Graph.Op("Add", $"{prefix}/scores/Add", [scaled, _mask]);
        var probs = Graph.Op("Softmax", $"{prefix}/Softmax", [masked], "", ("axis", -1L));
        if (Io != DataType.Float) probs = Graph.Op("Cast", $"{prefix}/probs/Cast", [probs], "", ("to", (long)Io));
        var context = Graph.Op("MatMul", $"{prefix}/context/MatMul", [probs, presentValue]); // [batch, kv, group·seq, d]

        var c5 = Graph.Op("Reshape", $"{prefix}/context/Reshape", [context, Graph.Int64Constant([5], 0, 0, Group, -1, d)]);
        var ct = Graph.Op("Transpose", $"{prefix}/context/Transpose", [c5], "", ("perm", new long[] { 0, 3, 1, 2, 4 }));
        var attended = Graph.Op("Reshape", $"{prefix}/context/Reshape2", [ct, Graph.Int64Constant([3], 0, 0, -1)]);

        string? outBias = Config.OutputBias ? LlamaTensorNames.Attention(layer, "o_proj", "bias") : null;
        return Projection($"{prefix}/o_proj", attended, LlamaTensorNames.Attention(layer, "o_proj"), h, q, outBias);
    }

    /// <summary>x·cos + rotate_half(x)·sin with rotate_half(x) = (−x₂, x₁) over the two halves of the head dimension.</summary>
    private string Rotate(string name, string x)
    {
        var half = Config.HeadDim / 2;
        var first = $"{name}/rotary/Split/output_0";
        var second = $"{name}/rotary/Split/output_1";
        Graph.Node("Split", $"{name}/rotary/Split", [x, Graph.Int64Constant([2], half, half)], [first, second], "", ("axis", -1L));
        var negated = Graph.Op("Neg", $"{name}/rotary/Neg", [second]);
        var rotated = Graph.Op("Concat", $"{name}/rotary/Concat", [negated, first], "", ("axis", -1L));
        var a = Graph.Op("Mul", $"{name}/rotary/MulCos", [x, _cos]);
        var b = Graph.Op("Mul", $"{name}/rotary/MulSin", [rotated, _sin]);
        return Graph.Op("Add", $"{name}/rotary/Add", [a, b]);
    }

    protected override string SimplifiedNorm(string name, string input, string weightName)
    {
        AddWeight(weightName, Weight(weightName, [Config.HiddenSize]), [Config.HiddenSize]);
        var x = Io == DataType.Float ? input : Graph.Op("Cast", $"{name}/Cast", [input], "", ("to", (long)DataType.Float));
        var square = Graph.Op("Mul", $"{name}/Square", [x, x]);
        var mean = Graph.Op("ReduceMean", $"{name}/ReduceMean", [square, Graph.Int64Constant([1], -1)], "", ("keepdims", 1L));
        var variance = Graph.Op("Add", $"{name}/AddEps", [mean, ScalarFloat($"{name}/epsilon", (float)Config.RmsNormEps)]);
        var rms = Graph.Op("Sqrt", $"{name}/Sqrt", [variance]);
        var normalised = Graph.Op("Div", $"{name}/Div", [x, rms]);
        if (Io != DataType.Float) normalised = Graph.Op("Cast", $"{name}/CastBack", [normalised], "", ("to", (long)Io));
        return Graph.Op("Mul", $"{name}/MulWeight", [normalised, weightName]);
    }

    protected override string SkipNorm(string name, string input, ref string residual, string weightName)
    {
        residual = Graph.Op("Add", $"{name}/residual/Add", [input, residual]);
        return SimplifiedNorm(name, residual, weightName);
    }

    private string ScalarFloat(string name, float value)
    {
        Graph.AddInitializer(name, DataType.Float, [], BitConverter.GetBytes(value));
        return name;
    }
}
