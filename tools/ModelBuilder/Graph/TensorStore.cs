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
        var tensor = new TensorProto { Name = name, DataType = (int)type };
        tensor.Dims.AddRange(dims);
        BytesWritten += data.Length;
        if (_external is null || data.Length < InlineBelowBytes)
        {
            tensor.RawData = ByteString.CopyFrom(data);
            return tensor;
        }

        var padding = (Alignment - _external.Position % Alignment) % Alignment;
        for (var i = 0; i < padding; i++) _external.WriteByte(0);
        var offset = _external.Position;
        _external.Write(data);
        tensor.DataLocation = TensorProto.Types.DataLocation.External;
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = _externalFileName });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = data.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return tensor;
    }

    public void Dispose() => _external?.Dispose();
}
