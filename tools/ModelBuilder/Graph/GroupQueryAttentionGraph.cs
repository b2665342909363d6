using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Checkpoints;
using DataType = Onnx.TensorProto.Types.DataType;

namespace ChatServices.ModelBuilder.Graph;

/// <summary>
/// The decoder with ONNX Runtime's GroupQueryAttention (ONNX Runtime GenAI's convention). Inputs: <c>input_ids</c>
/// int64 [batch, seq], <c>attention_mask</c> int64 [batch, total_seq], <c>past_key_values.{i}.key|value</c>
/// [batch, kv_heads, past_seq, head_dim]; outputs <c>logits</c> and <c>present.{i}.key|value</c>
/// [batch, kv_heads, total_seq, head_dim].
/// GroupQueryAttention applies the rotary embedding itself (do_rotary, positions derived from seqlens_k) and appends
/// the new keys and values into present — in place when the caller binds past and present to one buffer of
/// max_length (past_present_share_buffer), which is why no KV Concat appears outside it.
/// Per row, seqlens_k = Σ attention_mask − 1 (rows may be right-padded to different lengths);
/// total_sequence_length = attention_mask's second dimension.
/// </summary>
public sealed class GroupQueryAttentionGraph(DecoderConfig config, BuildOptions options, ITensorSource weights, OnnxGraph graph)
    : DecoderGraphWriter(config, options, weights, graph)
{
    private const string SeqlensK = "/model/attn_mask_reformat/seqlens_k";
    private const string TotalSequenceLength = "/model/attn_mask_reformat/total_seq_len";
    private const string CosCache = "cos_cache";
    private const string SinCache = "sin_cache";

    /// <summary>The packed projection's name in the graph (model.layers.{i}.self_attn.qkv_proj.weight): rows [q; k; v].</summary>
    public const string PackedQkv = "qkv_proj";

    protected override void DeclareInputs()
    {
        DeclareTokenAndCacheIO(positionIds: false);

        const string prefix = "/model/attn_mask_reformat";
        var sum = Graph.Op("ReduceSum", $"{prefix}/ReduceSum", ["attention_mask", Graph.Int64Constant([1], 1)], "", ("keepdims", 0L));
        var last = Graph.Op("Sub", $"{prefix}/Sub", [sum, Graph.Int64Constant([], 1)]);
        Graph.Node("Cast", $"{prefix}/seqlens_k/Cast", [last], [SeqlensK], "", ("to", (long)DataType.Int32));
        var shape = Graph.Op("Shape", $"{prefix}/Shape", ["attention_mask"]);
        var total = Graph.Op("Gather", $"{prefix}/Gather", [shape, Graph.Int64Constant([], 1)], "", ("axis", 0L));
        Graph.Node("Cast", $"{prefix}/total_seq_len/Cast", [total], [TotalSequenceLength], "", ("to", (long)DataType.Int32));

        var (cos, sin) = RotaryTables.Build(Config);
        long[] dims = [Config.ContextLength, Config.HeadDim / 2];
        AddWeight(CosCache, cos, dims);
        AddWeight(SinCache, sin, dims);
    }

    /// <summary>
    /// Rows end at Σ attention_mask − 1 in absolute positions; within the step that is min(Σ mask − 1, seq − 1):
    /// a right-padded first prefill ends early, a step on a cache ends at its last token.
    /// </summary>
    protected override string LastTokenIndex()
    {
        const string prefix = "/model/last_token";
        var seq = Graph.Op("Gather", $"{prefix}/seq/Gather", [Graph.Op("Shape", $"{prefix}/seq/Shape", ["input_ids"]), Graph.Int64Constant([], 1)], "", ("axis", 0L));
        var lastInStep = Graph.Op("Sub", $"{prefix}/seq/Sub", [seq, Graph.Int64Constant([], 1)]);
        var sum = Graph.Op("ReduceSum", $"{prefix}/ReduceSum", ["attention_mask", Graph.Int64Constant([1], 1)], "", ("keepdims", 1L));
        var lastValid = Graph.Op("Sub", $"{prefix}/Sub", [sum, Graph.Int64Constant([], 1)]);
        return Graph.Op("Min", $"{prefix}/Min", [lastValid, lastInStep]);
    }

    protected override string AttentionBlock(int layer, string normed)
    {
        var prefix = $"/model/layers.{layer}/attn";
        int h = Config.HiddenSize, q = Config.QueryHiddenSize, kv = Config.KvHiddenSize;
        // q, k and v in one projection ([q; k; v] rows): one matrix multiplication per layer instead of three, and
        // GroupQueryAttention takes the packed result as its query input (key and value inputs left empty).
        var packedRows = q + 2 * kv;
        var packed = new float[(long)packedRows * h];
        Weight(LlamaTensorNames.Attention(layer, "q_proj"), [q, h]).CopyTo(packed, 0);
        Weight(LlamaTensorNames.Attention(layer, "k_proj"), [kv, h]).CopyTo(packed, (long)q * h);
        Weight(LlamaTensorNames.Attention(layer, "v_proj"), [kv, h]).CopyTo(packed, (long)(q + kv) * h);
        (string, float[])? bias = null;
        if (Config.QkvBias)
        {
            var b = new float[packedRows];
            Weight(LlamaTensorNames.Attention(layer, "q_proj", "bias"), [q]).CopyTo(b, 0);
            Weight(LlamaTensorNames.Attention(layer, "k_proj", "bias"), [kv]).CopyTo(b, q);
            Weight(LlamaTensorNames.Attention(layer, "v_proj", "bias"), [kv]).CopyTo(b, q + kv);
            bias = (LlamaTensorNames.Attention(layer, PackedQkv, "bias"), b);
        }
        var qkv = Linear($"{prefix}/qkv_proj", normed, LlamaTensorNames.Attention(layer, PackedQkv), packed, packedRows, h, bias);

        var node = $"{prefix}/GroupQueryAttention";
        var output = $"{node}/output_0";
        List<(string, object)> attributes =
        [
            ("num_heads", (long)Config.NumHeads),
            ("kv_num_heads", (long)Config.NumKvHeads),
            ("scale", 1.0 / Math.Sqrt(Config.HeadDim)),
            ("do_rotary", 1L),
            ("rotary_interleaved", 0L),
        ];
        // Hugging Face's sliding window: key k is visible from query q when q − k < sliding_window, which is what
        // local_window_size = sliding_window gives (checked against the reference decoder in the tests).
        if (Config.SlidingWindow is { } window) attributes.Add(("local_window_size", (long)window));
        Graph.Node("GroupQueryAttention", node,
            [qkv, "", "", $"past_key_values.{layer}.key", $"past_key_values.{layer}.value", SeqlensK, TotalSequenceLength, CosCache, SinCache],
            [output, $"present.{layer}.key", $"present.{layer}.value"],
            OnnxGraph.MicrosoftDomain, [.. attributes]);

        string? outBias = Config.OutputBias ? LlamaTensorNames.Attention(layer, "o_proj", "bias") : null;
        return Projection($"{prefix}/o_proj", output, LlamaTensorNames.Attention(layer, "o_proj"), h, q, outBias);
    }
}
