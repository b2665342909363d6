using System.Reflection;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;

namespace ChatServices.OnnxRuntime.Tests;

/// <summary>
/// Proves the ONNX Runtime path the services use: the C# API of the NuGet package Microsoft.ML.OnnxRuntime,
/// loading the native library the package places beside it, runs a graph on the CPU provider and gives the right
/// numbers.
/// The graph is written here, field by field, in ONNX's protobuf wire format, so the test depends on nothing
/// but ONNX Runtime itself.
/// </summary>
public sealed class OnnxRuntimeCpuTests
{
    [Fact]
    public void Native_library_is_the_version_of_the_managed_api()
    {
        // The version pinned in Directory.Packages.props, as the managed assembly states it ("1.32.0+<commit>").
        var informational = typeof(OrtEnv).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
        var managed = informational.Split('+')[0];

        Assert.Matches(@"^\d+\.\d+\.\d+$", managed);
        Assert.Equal(managed, OrtEnv.Instance().GetVersionString());
    }

    [Fact]
    public void Cpu_provider_is_available()
    {
        Assert.Contains("CPUExecutionProvider", OrtEnv.Instance().GetAvailableProviders());
    }

    [Fact]
    public void Runs_matmul_add_relu_on_the_cpu_provider_with_exact_results()
    {
        float[] w = [1f, -1f, 0.5f, 2f, -2f, 0.25f];      // [3, 2]
        float[] b = [0.5f, -10f];                          // [2]
        float[] x = [1f, 2f, 3f, -1f, 0f, 4f];            // [2, 3]
        var model = TinyOnnx.MatMulAddRelu(w, b);

        using var options = new SessionOptions();
        options.AppendExecutionProvider_CPU();
        using var session = new InferenceSession(model, options);
        using var input = OrtValue.CreateTensorValueFromMemory(x, [2, 3]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["X"], [input], ["Y"]);

        var y = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        Assert.Equal(new long[] { 2, 2 }, outputs[0].GetTensorTypeAndShape().Shape);
        Assert.Equal(Expected(x, w, b), y);
    }

    [Fact]
    public void Rejects_a_malformed_model_with_an_onnxruntime_exception()
    {
        Assert.Throws<OnnxRuntimeException>(() => new InferenceSession(new byte[] { 1, 2, 3, 4, 5 }));
    }

    private static float[] Expected(float[] x, float[] w, float[] b)
    {
        var y = new float[4];
        for (var i = 0; i < 2; i++)
        for (var j = 0; j < 2; j++)
        {
            var sum = 0f;
            for (var k = 0; k < 3; k++) sum += x[i * 3 + k] * w[k * 2 + j];
            y[i * 2 + j] = Math.Max(0f, sum + b[j]);
        }
        return y;
    }

    /// <summary>The few ONNX protobuf messages this test needs, written with Google.Protobuf's wire writer.</summary>
    private static class TinyOnnx
    {
        private const int FloatType = 1;

        public static byte[] MatMulAddRelu(float[] w, float[] b)
        {
            var graph = Message(o =>
            {
                Field(o, 1, Node("MatMul", ["X", "W"], ["XW"]));
                Field(o, 1, Node("Add", ["XW", "B"], ["Z"]));
                Field(o, 1, Node("Relu", ["Z"], ["Y"]));
                Text(o, 2, "matmul_add_relu");
                Field(o, 5, FloatTensor("W", [3, 2], w));
                Field(o, 5, FloatTensor("B", [2], b));
                Field(o, 11, FloatValueInfo("X", ["batch", 3]));
                Field(o, 12, FloatValueInfo("Y", ["batch", 2]));
            });
            var opset = Message(o => { Text(o, 1, ""); Int(o, 2, 17); });
            return Message(o =>
            {
                Int(o, 1, 8);                     // ir_version
                Text(o, 2, "ChatServices tests"); // producer_name
                Field(o, 7, graph);
                Field(o, 8, opset);
            });
        }

        private static byte[] Node(string op, string[] inputs, string[] outputs) => Message(o =>
        {
            foreach (var i in inputs) Text(o, 1, i);
            foreach (var x in outputs) Text(o, 2, x);
            Text(o, 4, op);
        });

        private static byte[] FloatTensor(string name, long[] dims, float[] data) => Message(o =>
        {
            foreach (var d in dims) Int(o, 1, d);
            Int(o, 2, FloatType);
            Text(o, 8, name);
            var raw = new byte[data.Length * sizeof(float)];
            Buffer.BlockCopy(data, 0, raw, 0, raw.Length); // raw_data is little-endian, as is this machine
            o.WriteTag(9, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(raw));
        });

        private static byte[] FloatValueInfo(string name, object[] dims)
        {
            var shape = Message(o =>
            {
                foreach (var d in dims)
                    Field(o, 1, Message(dim => { if (d is string p) Text(dim, 2, p); else Int(dim, 1, Convert.ToInt64(d)); }));
            });
            var tensorType = Message(o => { Int(o, 1, FloatType); Field(o, 2, shape); });
            var type = Message(o => Field(o, 1, tensorType));
            return Message(o => { Text(o, 1, name); Field(o, 2, type); });
        }

        private static byte[] Message(Action<CodedOutputStream> write)
        {
            using var stream = new MemoryStream();
            var output = new CodedOutputStream(stream);
            write(output);
            output.Flush();
            return stream.ToArray();
        }

        private static void Field(CodedOutputStream o, int number, byte[] message)
        {
            o.WriteTag(number, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(ByteString.CopyFrom(message));
        }

        private static void Text(CodedOutputStream o, int number, string value)
        {
            o.WriteTag(number, WireFormat.WireType.LengthDelimited);
            o.WriteString(value);
        }

        private static void Int(CodedOutputStream o, int number, long value)
        {
            o.WriteTag(number, WireFormat.WireType.Varint);
            o.WriteInt64(value);
        }
    }
}
