using Onnx;

namespace ChatServices.ModelBuilder.Tests.Runtime;

/// <summary>
/// Reads the 4-bit (or 8-bit) weights back out of a built model.onnx and dequantizes them as ONNX Runtime's
/// MatMulNBits specification defines: B uint8 [N, blocks, block/2] (even element in the low nibble; 8 bits:
/// [N, blocks, block]), scales [N·blocks], optional zero points uint8 [N, ⌈blocks/2⌉] (default 8; 8 bits: [N, blocks],
/// default 128); w[n, k] = (q − zp) · scale, the padding beyond K dropped.
/// </summary>
public static class MatMulNBitsReader
{
    /// <summary>
    /// Hugging Face weight name → dequantized [N, K] values. The packed qkv_proj ([q; k; v] rows) is split back
    /// into q_proj (<paramref name="queryRows"/> rows), k_proj and v_proj (<paramref name="kvRows"/> rows each).
    /// </summary>
    public static Dictionary<string, float[]> DequantizedWeights(string modelPath, int queryRows, int kvRows)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath));
        var initializers = model.Graph.Initializer.ToDictionary(t => t.Name);
        var result = new Dictionary<string, float[]>();
        foreach (var node in model.Graph.Node.Where(n => n.OpType == "MatMulNBits"))
        {
            var attr = node.Attribute.ToDictionary(a => a.Name, a => a.I);
            int n = (int)attr["N"], k = (int)attr["K"], block = (int)attr["block_size"], bits = (int)attr["bits"];
            var b = initializers[node.Input[1]].RawData.ToByteArray();
            var scales = initializers[node.Input[2]].RawData.ToByteArray();
            var zp = node.Input.Count > 3 && node.Input[3] != "" ? initializers[node.Input[3]].RawData.ToByteArray() : null;
            var blocks = (k + block - 1) / block;
            var w = new float[n * k];
            for (var row = 0; row < n; row++)
            for (var col = 0; col < k; col++)
            {
                var blockIndex = col / block;
                var within = col % block;
                int q, zero;
                if (bits == 8)
                {
                    q = b[(row * blocks + blockIndex) * block + within];
                    zero = zp is null ? 128 : zp[row * blocks + blockIndex];
                }
                else
                {
                    var packed = b[(row * blocks + blockIndex) * (block / 2) + within / 2];
                    q = within % 2 == 0 ? packed & 0xF : packed >> 4;
                    zero = 8;
                    if (zp is not null)
                    {
                        var z = zp[row * ((blocks + 1) / 2) + blockIndex / 2];
                        zero = blockIndex % 2 == 0 ? z & 0xF : z >> 4;
                    }
                }
                var scale = BitConverter.ToSingle(scales, (row * blocks + blockIndex) * 4);
                w[row * k + col] = (q - zero) * scale;
            }
            const string suffix = ".MatMulNBits.qweight";
            var name = node.Input[1][..^suffix.Length];
            if (name.EndsWith("self_attn.qkv_proj.weight", StringComparison.Ordinal))
            {
                Assert.Equal(queryRows + 2 * kvRows, n);
                var prefix = name[..^"qkv_proj.weight".Length];
                result[prefix + "q_proj.weight"] = w[..(queryRows * k)];
                result[prefix + "k_proj.weight"] = w[(queryRows * k)..((queryRows + kvRows) * k)];
                result[prefix + "v_proj.weight"] = w[((queryRows + kvRows) * k)..];
            }
            else
            {
                result[name] = w;
            }
        }
        return result;
    }
}
