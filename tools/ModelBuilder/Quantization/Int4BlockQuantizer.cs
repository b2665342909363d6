namespace ChatServices.ModelBuilder.Quantization;

/// <summary>
/// Weight-only quantization settings (ONNX Runtime's MatMulNBits): 4 bits per weight, or 8. The defaults — block 128,
/// symmetric, accuracy level 4 — are the fastest settings measured on ONNX Runtime 1.32's x86 CPU kernels
/// (bench/results/quantization.md); block 32 is the more accurate choice at 0.75 more bits per weight.
/// </summary>
/// <param name="BlockSize">Weights per scale along the input dimension; a power of two ≥ 16.</param>
/// <param name="Symmetric">True: zero point fixed at 8, the largest-magnitude weight at −8. False: a 4-bit zero point per block.</param>
/// <param name="AccuracyLevel">MatMulNBits' accuracy_level: 0 computes in the input type (float32), 4 quantizes
/// activations to int8 for the faster integer kernels on CPU.</param>
/// <param name="Bits">4 (the default) or 8 bits per weight.</param>
public sealed record Int4Options(int BlockSize = 128, bool Symmetric = true, int AccuracyLevel = 4, int Bits = 4)
{
    public void Validate()
    {
        if (BlockSize < 16 || (BlockSize & (BlockSize - 1)) != 0)
            throw new ModelBuilderException($"Int4 block size must be a power of two of at least 16 (got {BlockSize}).");
        if (AccuracyLevel is < 0 or > 4)
            throw new ModelBuilderException($"Int4 accuracy level must be 0 to 4 (got {AccuracyLevel}).");
        if (Bits is not (4 or 8))
            throw new ModelBuilderException($"Weights are quantized to 4 or 8 bits (got {Bits}).");
    }
}

/// <summary>A [N, K] weight in MatMulNBits' layout.</summary>
/// <param name="Packed">uint8 [N, blocks, BlockSize·Bits/8]: 4 bits: element 2j of a block in the low nibble of byte j,
/// 2j+1 in the high; 8 bits: one byte per element.</param>
/// <param name="Scales">float [N·blocks].</param>
/// <param name="ZeroPoints">4 bits: uint8 [N, ⌈blocks/2⌉], block 2j in the low nibble; 8 bits: uint8 [N, blocks]; null
/// when symmetric (implicit 8, or 128).</param>
public sealed record Int4Weights(int N, int K, int BlockSize, int Bits, byte[] Packed, float[] Scales, byte[]? ZeroPoints)
{
    public int Blocks => (K + BlockSize - 1) / BlockSize;
}

/// <summary>
/// Blockwise round-to-nearest 4-bit (or 8-bit) quantization of linear weights stored [out_features N, in_features K]
/// (Hugging Face's layout, which is also MatMulNBits' B layout). The input dimension is zero-padded to whole blocks.
/// Dequantized value: (q − zero_point) · scale.
/// </summary>
public static class Int4BlockQuantizer
{
    public static Int4Weights Quantize(float[] weight, int n, int k, Int4Options options)
    {
        var block = options.BlockSize;
        var blocks = (k + block - 1) / block;
        var wide = options.Bits == 8;
        var levels = (1 << options.Bits) - 1;        // 15 or 255
        var middle = 1 << (options.Bits - 1);        // 8 or 128: the symmetric zero point
        var bytesPerBlock = block * options.Bits / 8;
        var zeroBytesPerRow = wide ? blocks : (blocks + 1) / 2;
        var packed = new byte[(long)n * blocks * bytesPerBlock];
        var scales = new float[n * blocks];
        var zeroPoints = options.Symmetric ? null : new byte[n * zeroBytesPerRow];
        var q = new byte[block];

        for (var row = 0; row < n; row++)
        for (var b = 0; b < blocks; b++)
        {
            var start = b * block;
            var count = Math.Min(block, k - start);
            var values = weight.AsSpan(row * k + start, count);
            float scale;
            int zero;
            if (options.Symmetric)
            {
                // The largest-magnitude weight maps exactly onto −8 (−128 at 8 bits; scale takes the opposite sign), so
                // the whole range [−8, 7] is used: a step of max|w|/8 rather than max|w|/7.
                var extreme = 0f;
                foreach (var v in values) if (Math.Abs(v) > Math.Abs(extreme)) extreme = v;
                scale = extreme != 0 ? extreme / -middle : 1f;
                zero = middle;
            }
            else
            {
                // The range always includes 0 so that zero weights (and the padding) are exact.
                float min = 0f, max = 0f;
                foreach (var v in values) { min = Math.Min(min, v); max = Math.Max(max, v); }
                scale = max > min ? (max - min) / levels : 1f;
                zero = Math.Clamp((int)MathF.Round(-min / scale), 0, levels);
            }

            for (var i = 0; i < block; i++)
            {
                var v = i < count ? values[i] : 0f;
                q[i] = (byte)Math.Clamp((int)MathF.Round(v / scale) + zero, 0, levels);
            }
            var offset = ((long)row * blocks + b) * bytesPerBlock;
            if (wide) q.CopyTo(packed.AsSpan((int)offset, block));
            else for (var j = 0; j < block / 2; j++) packed[offset + j] = (byte)(q[2 * j] | (q[2 * j + 1] << 4));
            scales[row * blocks + b] = scale;
            if (zeroPoints is null) continue;
            if (wide) zeroPoints[row * zeroBytesPerRow + b] = (byte)zero;
            else zeroPoints[row * zeroBytesPerRow + b / 2] |= (byte)(b % 2 == 0 ? zero : zero << 4);
        }
        return new Int4Weights(n, k, block, options.Bits, packed, scales, zeroPoints);
    }
}
