using System.Text;
using System.Text.Json.Nodes;
using ChatServices.ModelBuilder.Architectures;
using ChatServices.ModelBuilder.Checkpoints;
using ChatServices.ModelBuilder.Folder;

namespace ChatServices.ModelBuilder.Gguf;

/// <summary>Element types of the GGUF tensors written (ggml's type ids); norms are always F32.</summary>
public enum GgufType
{
    F32 = 0,
    F16 = 1,
    /// <summary>Blocks of 32 weights: a float16 scale and 32 4-bit values (4.5 bits per weight).</summary>
    Q4_0 = 2,
    /// <summary>Blocks of 32 weights: a float16 scale and 32 int8 values (8.5 bits per weight).</summary>
    Q8_0 = 8,
}

/// <summary>
/// Writes a Llama-family checkpoint as a GGUF v3 file for llama.cpp (the peer in bench/InferenceBench): the
/// <c>llama</c> architecture's metadata, the tokenizer's vocabulary from tokenizer.json, and the weights under
/// llama.cpp's names in F32, F16, Q8_0 or Q4_0. Query and key rows are permuted from Hugging Face's rotate-half
/// rotary layout to llama.cpp's interleaved pairs (as llama.cpp's own converter does), so both runtimes compute the
/// same function. Layout: header, metadata, tensor descriptors, then the tensor data, each aligned to 32 bytes.
/// </summary>
public static class GgufWriter
{
    private const int Alignment = 32;
    private const int BlockSize = 32;

    private enum ValueType : uint { UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9 }

    private sealed record TensorPlan(string GgufName, string SourceName, long[] HfShape, GgufType Type, Func<float[], float[]>? Transform);

    public static void Write(DecoderConfig config, ITensorSource weights, TokenizerFiles tokenizer, string outputPath, GgufType type)
    {
        config.Validate();
        if (config.QkvBias || config.OutputBias || config.SlidingWindow is not null || config.RopeScaling is not null)
            throw new ModelBuilderException("GGUF output covers plain Llama checkpoints (no biases, sliding window or rope scaling).");
        var plans = Plan(config, type).ToList();
        var directory = Path.GetDirectoryName(Path.GetFullPath(outputPath));
        if (directory is not null) Directory.CreateDirectory(directory);

        using var file = new FileStream(outputPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var writer = new BinaryWriter(file, Encoding.UTF8, leaveOpen: true);
        var metadata = Metadata(config, tokenizer, type);
        writer.Write(0x46554747u); // "GGUF"
        writer.Write(3u);
        writer.Write((ulong)plans.Count);
        writer.Write((ulong)metadata.Count);
        foreach (var write in metadata) write(writer);

        long offset = 0;
        foreach (var plan in plans)
        {
            WriteString(writer, plan.GgufName);
            // GGUF dimensions run innermost first: a [out, in] weight is ne = [in, out].
            var dims = plan.HfShape.Reverse().ToArray();
            writer.Write((uint)dims.Length);
            foreach (var d in dims) writer.Write((ulong)d);
            writer.Write((uint)plan.Type);
            writer.Write((ulong)offset);
            offset = Align(offset + ByteSize(plan.HfShape, plan.Type));
        }
        Pad(writer);

        var start = file.Position;
        foreach (var plan in plans)
        {
            var values = weights.ReadFloat32(plan.SourceName);
            if (plan.Transform is not null) values = plan.Transform(values);
            var bytes = Encode(values, plan.Type);
            writer.Write(bytes);
            Pad(writer, start);
        }
    }

    private static IEnumerable<TensorPlan> Plan(DecoderConfig c, GgufType type)
    {
        long h = c.HiddenSize, q = c.QueryHiddenSize, kv = c.KvHiddenSize, f = c.IntermediateSize;
        var matrix = type;
        yield return new("token_embd.weight", LlamaTensorNames.Embedding, [c.VocabSize, h], matrix, null);
        for (var i = 0; i < c.NumLayers; i++)
        {
            yield return new($"blk.{i}.attn_norm.weight", LlamaTensorNames.InputNorm(i), [h], GgufType.F32, null);
            yield return new($"blk.{i}.attn_q.weight", LlamaTensorNames.Attention(i, "q_proj"), [q, h], matrix,
                w => PermuteForInterleavedRotary(w, c.NumHeads, c.HeadDim, (int)h));
            yield return new($"blk.{i}.attn_k.weight", LlamaTensorNames.Attention(i, "k_proj"), [kv, h], matrix,
                w => PermuteForInterleavedRotary(w, c.NumKvHeads, c.HeadDim, (int)h));
            yield return new($"blk.{i}.attn_v.weight", LlamaTensorNames.Attention(i, "v_proj"), [kv, h], matrix, null);
            yield return new($"blk.{i}.attn_output.weight", LlamaTensorNames.Attention(i, "o_proj"), [h, q], matrix, null);
            yield return new($"blk.{i}.ffn_norm.weight", LlamaTensorNames.PostAttentionNorm(i), [h], GgufType.F32, null);
            yield return new($"blk.{i}.ffn_gate.weight", LlamaTensorNames.Mlp(i, "gate_proj"), [f, h], matrix, null);
            yield return new($"blk.{i}.ffn_up.weight", LlamaTensorNames.Mlp(i, "up_proj"), [f, h], matrix, null);
            yield return new($"blk.{i}.ffn_down.weight", LlamaTensorNames.Mlp(i, "down_proj"), [h, f], matrix, null);
        }
        yield return new("output_norm.weight", LlamaTensorNames.FinalNorm, [h], GgufType.F32, null);
        // Tied embeddings: llama.cpp uses token_embd.weight as the output layer when output.weight is absent.
        if (!c.TieWordEmbeddings) yield return new("output.weight", LlamaTensorNames.LmHead, [c.VocabSize, h], matrix, null);
    }

    /// <summary>
    /// Hugging Face orders each head's rows as [first halves; second halves] (rotate-half); llama.cpp rotates adjacent
    /// pairs. Row (half i, index j) of a head moves to row 2j + i.
    /// </summary>
    private static float[] PermuteForInterleavedRotary(float[] weight, int heads, int headDim, int columns)
    {
        var result = new float[weight.Length];
        var half = headDim / 2;
        for (var head = 0; head < heads; head++)
        for (var i = 0; i < 2; i++)
        for (var j = 0; j < half; j++)
        {
            var from = (long)(head * headDim + i * half + j) * columns;
            var to = (long)(head * headDim + 2 * j + i) * columns;
            Array.Copy(weight, from, result, to, columns);
        }
        return result;
    }

    private static List<Action<BinaryWriter>> Metadata(DecoderConfig c, TokenizerFiles tokenizer, GgufType type)
    {
        var (tokens, scores, types) = Vocabulary(tokenizer, c.VocabSize);
        var list = new List<Action<BinaryWriter>>
        {
            Str("general.architecture", "llama"),
            Str("general.name", "ChatServices.ModelBuilder"),
            U32("general.file_type", type switch { GgufType.F32 => 0u, GgufType.F16 => 1u, GgufType.Q4_0 => 2u, _ => 7u }),
            U32("general.alignment", Alignment),
            U32("llama.context_length", (uint)c.ContextLength),
            U32("llama.embedding_length", (uint)c.HiddenSize),
            U32("llama.block_count", (uint)c.NumLayers),
            U32("llama.feed_forward_length", (uint)c.IntermediateSize),
            U32("llama.rope.dimension_count", (uint)c.HeadDim),
            U32("llama.attention.head_count", (uint)c.NumHeads),
            U32("llama.attention.head_count_kv", (uint)c.NumKvHeads),
            U32("llama.attention.key_length", (uint)c.HeadDim),
            U32("llama.attention.value_length", (uint)c.HeadDim),
            F32("llama.attention.layer_norm_rms_epsilon", (float)c.RmsNormEps),
            F32("llama.rope.freq_base", (float)c.RopeTheta),
            U32("llama.vocab_size", (uint)c.VocabSize),
            Str("tokenizer.ggml.model", "llama"),
            w => { WriteString(w, "tokenizer.ggml.tokens"); w.Write((uint)ValueType.Array); w.Write((uint)ValueType.String); w.Write((ulong)tokens.Length); foreach (var t in tokens) WriteString(w, t); },
            w => { WriteString(w, "tokenizer.ggml.scores"); w.Write((uint)ValueType.Array); w.Write((uint)ValueType.Float32); w.Write((ulong)scores.Length); foreach (var s in scores) w.Write(s); },
            w => { WriteString(w, "tokenizer.ggml.token_type"); w.Write((uint)ValueType.Array); w.Write((uint)ValueType.Int32); w.Write((ulong)types.Length); foreach (var t in types) w.Write(t); },
            U32("tokenizer.ggml.bos_token_id", (uint)(c.BosTokenId ?? c.EosTokenIds[0])),
            U32("tokenizer.ggml.eos_token_id", (uint)c.EosTokenIds[0]),
        };
        if (tokenizer.SpecialTokenId("unk_token") is { } unk) list.Add(U32("tokenizer.ggml.unknown_token_id", (uint)unk));
        if (c.PadTokenId is { } pad) list.Add(U32("tokenizer.ggml.padding_token_id", (uint)pad));
        list.Add(w => { WriteString(w, "tokenizer.ggml.add_bos_token"); w.Write((uint)ValueType.Bool); w.Write((byte)1); });
        return list;
    }

    /// <summary>
    /// The vocabulary in id order with SentencePiece-style metadata: a score per token (earlier ids rank higher, as in
    /// Llama's SentencePiece model) and a type (1 normal, 2 unknown, 3 control, 6 byte). Ids the tokenizer lacks up to
    /// the model's vocabulary size become unused placeholders.
    /// </summary>
    private static (string[] Tokens, float[] Scores, int[] Types) Vocabulary(TokenizerFiles tokenizer, int vocabSize)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(tokenizer.Directory, "tokenizer.json")))!.AsObject();
        var tokens = new string[vocabSize];
        if (json["model"]?["vocab"] is JsonObject vocab)
            foreach (var (token, id) in vocab) if ((int)id! < vocabSize) tokens[(int)id!] = token;
        var special = new HashSet<int>();
        if (json["added_tokens"] is JsonArray added)
            foreach (var a in added)
            {
                var id = (int)a!["id"]!;
                if (id >= vocabSize) continue;
                tokens[id] = (string)a["content"]!;
                if ((bool?)a["special"] == true) special.Add(id);
            }
        var unk = tokenizer.SpecialTokenId("unk_token");
        var scores = new float[vocabSize];
        var types = new int[vocabSize];
        for (var id = 0; id < vocabSize; id++)
        {
            tokens[id] ??= $"[PAD{id}]";
            scores[id] = -id;
            types[id] = id == unk ? 2
                : special.Contains(id) ? 3
                : tokens[id].Length == 6 && tokens[id].StartsWith("<0x", StringComparison.Ordinal) && tokens[id].EndsWith('>') ? 6
                : 1;
        }
        return (tokens, scores, types);
    }

    private static Action<BinaryWriter> Str(string key, string value) => w => { WriteString(w, key); w.Write((uint)ValueType.String); WriteString(w, value); };
    private static Action<BinaryWriter> U32(string key, uint value) => w => { WriteString(w, key); w.Write((uint)ValueType.UInt32); w.Write(value); };
    private static Action<BinaryWriter> F32(string key, float value) => w => { WriteString(w, key); w.Write((uint)ValueType.Float32); w.Write(value); };

    private static void WriteString(BinaryWriter writer, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    private static long Align(long offset) => (offset + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter writer, long origin = 0)
    {
        var position = writer.BaseStream.Position - origin;
        for (var i = position; i < Align(position); i++) writer.Write((byte)0);
    }

    public static long ByteSize(long[] shape, GgufType type)
    {
        var count = shape.Aggregate(1L, (a, d) => a * d);
        if (type is GgufType.Q4_0 or GgufType.Q8_0 && shape[^1] % BlockSize != 0)
            throw new ModelBuilderException($"{type} needs rows that are a multiple of {BlockSize} weights (got {shape[^1]}).");
        return type switch
        {
            GgufType.F32 => count * 4,
            GgufType.F16 => count * 2,
            GgufType.Q4_0 => count / BlockSize * 18,
            _ => count / BlockSize * 34,
        };
    }

    /// <summary>ggml's reference quantizers (quantize_row_q4_0_ref, quantize_row_q8_0_ref) and plain F32/F16.</summary>
    public static byte[] Encode(float[] values, GgufType type)
    {
        switch (type)
        {
            case GgufType.F32:
            {
                var bytes = new byte[values.Length * 4];
                Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
                return bytes;
            }
            case GgufType.F16:
            {
                var bytes = new byte[values.Length * 2];
                for (var i = 0; i < values.Length; i++) BitConverter.TryWriteBytes(bytes.AsSpan(2 * i), (Half)values[i]);
                return bytes;
            }
            case GgufType.Q4_0:
            {
                var bytes = new byte[values.Length / BlockSize * 18];
                for (var b = 0; b < values.Length / BlockSize; b++)
                {
                    var x = values.AsSpan(b * BlockSize, BlockSize);
                    float amax = 0, max = 0;
                    foreach (var v in x) if (Math.Abs(v) > amax) { amax = Math.Abs(v); max = v; }
                    var d = max / -8f;
                    var id = d != 0 ? 1f / d : 0f;
                    var block = bytes.AsSpan(b * 18, 18);
                    BitConverter.TryWriteBytes(block, (Half)d);
                    for (var j = 0; j < BlockSize / 2; j++)
                    {
                        var lo = Math.Min(15, (int)(sbyte)(x[j] * id + 8.5f));
                        var hi = Math.Min(15, (int)(sbyte)(x[BlockSize / 2 + j] * id + 8.5f));
                        block[2 + j] = (byte)(lo | (hi << 4));
                    }
                }
                return bytes;
            }
            default:
            {
                var bytes = new byte[values.Length / BlockSize * 34];
                for (var b = 0; b < values.Length / BlockSize; b++)
                {
                    var x = values.AsSpan(b * BlockSize, BlockSize);
                    float amax = 0;
                    foreach (var v in x) amax = Math.Max(amax, Math.Abs(v));
                    var d = amax / 127f;
                    var id = d != 0 ? 1f / d : 0f;
                    var block = bytes.AsSpan(b * 34, 34);
                    BitConverter.TryWriteBytes(block, (Half)d);
                    for (var j = 0; j < BlockSize; j++) block[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
                }
                return bytes;
            }
        }
    }
}
