using Google.Protobuf;
using Onnx;

namespace ChatServices.ModelBuilder.Graph;

/// <summary>
/// Accumulates an ONNX graph: nodes in topological order (the order they are added), graph inputs and outputs, and
/// initializers whose bytes go straight to a <see cref="TensorStore"/> (inline, or appended to the external data file),
/// so that a large model is never held in memory as a whole.
/// </summary>
public sealed class OnnxGraph(TensorStore store)
{
    public const string MicrosoftDomain = "com.microsoft";

    private readonly GraphProto _graph = new() { Name = "main_graph" };
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private int _constantCount;

    public GraphProto Proto => _graph;

    public void AddInput(string name, TensorProto.Types.DataType type, params object[] dims) =>
        _graph.Input.Add(ValueInfo(name, type, dims));

    public void AddOutput(string name, TensorProto.Types.DataType type, params object[] dims) =>
        _graph.Output.Add(ValueInfo(name, type, dims));

    /// <summary>Adds a node; returns its first output's name. Empty strings mark omitted optional inputs/outputs.</summary>
    public string Node(string opType, string name, IEnumerable<string> inputs, IEnumerable<string> outputs,
        string domain = "", params (string Name, object Value)[] attributes)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"Duplicate node name {name}.");
        var node = new NodeProto { OpType = opType, Name = name, Domain = domain };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        foreach (var (attrName, value) in attributes) node.Attribute.Add(Attribute(attrName, value));
        _graph.Node.Add(node);
        return node.Output[0];
    }

    /// <summary>A single-output node whose output is named after the node (<c>{name}/output_0</c>).</summary>
    public string Op(string opType, string name, IEnumerable<string> inputs, string domain = "", params (string Name, object Value)[] attributes) =>
        Node(opType, name, inputs, [$"{name}/output_0"], domain, attributes);

    public void AddInitializer(string name, TensorProto.Types.DataType type, long[] dims, ReadOnlySpan<byte> data) =>
        _graph.Initializer.Add(store.Write(name, type, dims, data));

    public void AddFloatInitializer(string name, long[] dims, float[] values, bool asFloat16) =>
        _graph.Initializer.Add(store.WriteFloats(name, dims, values, asFloat16));

    public string Int64Constant(long[] dims, params long[] values)
    {
        var name = $"/model/constants/INT64/{_constantCount++}";
        AddInitializer(name, TensorProto.Types.DataType.Int64, dims, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return name;
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d switch
            {
                string param => new TensorShapeProto.Types.Dimension { DimParam = param },
                int value => new TensorShapeProto.Types.Dimension { DimValue = value },
                long value => new TensorShapeProto.Types.Dimension { DimValue = value },
                _ => throw new ArgumentException($"Dimension {d} of {name} is neither a name nor a size."),
            });
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private static AttributeProto Attribute(string name, object value) => value switch
    {
        int i => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = i },
        long l => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = l },
        float f => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = f },
        double d => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = (float)d },
        string s => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(s) },
        long[] ints => WithInts(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints }, ints),
        _ => throw new ArgumentException($"Attribute {name} has unsupported value type {value.GetType()}."),
    };

    private static AttributeProto WithInts(AttributeProto a, long[] ints)
    {
        a.Ints.AddRange(ints);
        return a;
    }
}
