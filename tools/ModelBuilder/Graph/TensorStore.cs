using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace ChatServices.ModelBuilder.Graph;

/// <summary>
/// Where initializer bytes go. Inline: into the TensorProto's raw_data (the whole model must stay under protobuf's
/// 2 GB limit). External: appended to <c>model.onnx.data</c> beside the model, each tensor at a 64-byte-aligned
/// offset, the TensorProto carrying only its location — what ONNX Runtime requires above 2 GB and what GenAI
/// folders commonly use. Tensors under <see cref="InlineBelowBytes"/> stay inline either way.
/// </summary>
public sealed class TensorStore : IDisposable
{
    public const int InlineBelowBytes = 1024;
    private const int Alignment = 64;

    private readonly FileStream? _external;
    private readonly string? _externalFileName;

    private TensorStore(FileStream? external, string? externalFileName)
    {
        _external = external;
        _externalFileName = externalFileName;
    }

    public static TensorStore Inline() => new(null, null);

    public static TensorStore External(string path) =>
        new(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20), Path.GetFileName(path));

    public bool IsExternal => _external is not null;

    /// <summary>Bytes written so far (inline and external), for progress reports.</summary>
    public long BytesWritten { get; private set; }

    public TensorProto Write(string name, TensorProto.Types.DataType type, long[] dims, ReadOnlySpan<byte> data)
    {
        var tensor = NewTensor(name, type, dims);
        BytesWritten += data.Length;
        if (_external is null || data.Length < InlineBelowBytes)
        {
            tensor.RawData = ByteString.CopyFrom(data);
            return tensor;
        }
        var offset = AlignExternal();
        _external.Write(data);
        return External(tensor, offset, data.Length);
    }

    /// <summary>
    /// Writes float weights as float32 or float16, converting in chunks so that a tensor larger than a span can
    /// address in bytes (an LM head of 150k × 4k floats) streams to the external file.
    /// </summary>
    public TensorProto WriteFloats(string name, long[] dims, float[] values, bool asFloat16)
    {
        var type = asFloat16 ? TensorProto.Types.DataType.Float16 : TensorProto.Types.DataType.Float;
        var elementSize = asFloat16 ? 2 : 4;
        var length = values.LongLength * elementSize;
        if (_external is null || length < InlineBelowBytes)
        {
            if (length > int.MaxValue - 64)
                throw new ModelBuilderException($"Tensor '{name}' ({length >> 20} MiB) is too large to store inside model.onnx; use external data.");
            var bytes = new byte[length];
            Convert(values, 0, values.Length, asFloat16, bytes);
            return Write(name, type, dims, bytes);
        }

        var tensor = NewTensor(name, type, dims);
        var offset = AlignExternal();
        const int chunkElements = 1 << 22;
        var buffer = new byte[Math.Min(values.Length, chunkElements) * elementSize];
        for (var start = 0; start < values.Length; start += chunkElements)
        {
            var count = Math.Min(chunkElements, values.Length - start);
            Convert(values, start, count, asFloat16, buffer);
            _external.Write(buffer, 0, count * elementSize);
        }
        BytesWritten += length;
        return External(tensor, offset, length);
    }

    private static void Convert(float[] values, int start, int count, bool asFloat16, Span<byte> destination)
    {
        var source = values.AsSpan(start, count);
        if (!asFloat16)
        {
            MemoryMarshal.AsBytes(source).CopyTo(destination);
            return;
        }
        var halves = MemoryMarshal.Cast<byte, Half>(destination);
        for (var i = 0; i < count; i++) halves[i] = (Half)source[i];
    }

    private static TensorProto NewTensor(string name, TensorProto.Types.DataType type, long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)type };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    private long AlignExternal()
    {
        var padding = (Alignment - _external!.Position % Alignment) % Alignment;
        for (var i = 0; i < padding; i++) _external.WriteByte(0);
        return _external.Position;
    }

    private TensorProto External(TensorProto tensor, long offset, long length)
    {
        tensor.DataLocation = TensorProto.Types.DataLocation.External;
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = _externalFileName });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) });
        return tensor;
    }

    public void Dispose() => _external?.Dispose();
}
