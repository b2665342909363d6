using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace ChatServices.ModelBuilder.Tests.Runtime;

/// <summary>
/// Drives a built model.onnx through ONNX Runtime the way a serving engine does: a prefill of right-padded rows, then
/// decode steps that feed back the key/value cache. Two cache modes:
/// <list type="bullet">
/// <item>growing: each step's present.* become the next step's past_key_values.* (ONNX Runtime allocates them);</item>
/// <item>shared buffer (GroupQueryAttention only): past and present are bound to the same preallocated
/// [batch, kv_heads, max_length, head_dim] tensors, which GroupQueryAttention updates in place.</item>
/// </list>
/// Rows keep their own lengths; the attention mask marks each row's valid prefix. Graphs with a <c>position_ids</c>
/// input (the standard-operator convention) get each row's positions and require rows of equal length.
/// </summary>
public sealed class OnnxDecoderRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly int _layers, _kvHeads, _headDim, _vocab, _batch, _maxLength;
    private readonly bool _shareBuffer, _hasPositionIds, _lastTokenOnly;
    private readonly TensorElementType _kvType;
    private readonly int[] _lengths;
    private OrtValue[] _past;

    public OnnxDecoderRunner(string modelPath, int batch, bool shareBuffer, int maxLength = 0, SessionOptions? options = null)
    {
        _session = options is null ? new InferenceSession(modelPath) : new InferenceSession(modelPath, options);
        var inputs = _session.InputMetadata;
        _layers = inputs.Keys.Count(k => k.StartsWith("past_key_values.", StringComparison.Ordinal) && k.EndsWith(".key", StringComparison.Ordinal));
        var pastMeta = inputs["past_key_values.0.key"];
        _kvHeads = pastMeta.Dimensions[1];
        _headDim = pastMeta.Dimensions[3];
        _kvType = pastMeta.ElementDataType;
        _vocab = _session.OutputMetadata["logits"].Dimensions[2];
        _lastTokenOnly = _session.OutputMetadata["logits"].Dimensions[1] == 1;
        _hasPositionIds = inputs.ContainsKey("position_ids");
        _batch = batch;
        _shareBuffer = shareBuffer;
        _maxLength = maxLength;
        _lengths = new int[batch];
        _past = new OrtValue[2 * _layers];
        long[] shape = [batch, _kvHeads, shareBuffer ? maxLength : 0, _headDim];
        for (var i = 0; i < _past.Length; i++)
            _past[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, _kvType, shape);
    }

    public IReadOnlyList<int> Lengths => _lengths;

    /// <summary>
    /// Appends <paramref name="rows"/>[b] to row b (rows may differ in length: right padding) and returns, per row,
    /// the logits of each of its new tokens (of its last new token only, for a graph with last-token logits).
    /// </summary>
    public float[][][] Step(IReadOnlyList<long[]> rows)
    {
        if (rows.Count != _batch) throw new ArgumentException("one token list per row");
        var s = rows.Max(r => r.Length);
        var total = Enumerable.Range(0, _batch).Max(b => _lengths[b] + rows[b].Length);
        if (_hasPositionIds && rows.Any(r => r.Length != s || _lengths.Distinct().Count() > 1))
            throw new NotSupportedException("position_ids graphs are driven with rows of equal length here");

        var ids = new long[_batch * s];
        var mask = new long[_batch * total];
        var positions = new long[_batch * s];
        for (var b = 0; b < _batch; b++)
        {
            rows[b].CopyTo(ids, b * s);
            for (var j = 0; j < _lengths[b] + rows[b].Length; j++) mask[b * total + j] = 1;
            for (var j = 0; j < s; j++) positions[b * s + j] = _lengths[b] + j;
        }

        var names = new List<string> { "input_ids", "attention_mask" };
        var values = new List<OrtValue>
        {
            OrtValue.CreateTensorValueFromMemory(ids, [_batch, s]),
            OrtValue.CreateTensorValueFromMemory(mask, [_batch, total]),
        };
        if (_hasPositionIds)
        {
            names.Add("position_ids");
            values.Add(OrtValue.CreateTensorValueFromMemory(positions, [_batch, s]));
        }
        for (var l = 0; l < _layers; l++)
        {
            names.Add($"past_key_values.{l}.key");
            values.Add(_past[2 * l]);
            names.Add($"past_key_values.{l}.value");
            values.Add(_past[2 * l + 1]);
        }
        var outputNames = new List<string> { "logits" };
        for (var l = 0; l < _layers; l++) { outputNames.Add($"present.{l}.key"); outputNames.Add($"present.{l}.value"); }

        float[] logits;
        try
        {
            if (_shareBuffer)
            {
                if (total > _maxLength) throw new InvalidOperationException("the shared cache is full");
                var logitRows = _lastTokenOnly ? 1 : s;
                logits = new float[_batch * logitRows * _vocab];
                using var logitsValue = OrtValue.CreateTensorValueFromMemory(logits, [_batch, logitRows, _vocab]);
                var outputs = new List<OrtValue> { logitsValue };
                outputs.AddRange(_past);
                _session.Run(_runOptions, names, values, outputNames, outputs);
            }
            else
            {
                using var outputs = _session.Run(_runOptions, names, values, outputNames);
                logits = outputs[0].GetTensorDataAsSpan<float>().ToArray();
                var next = new OrtValue[2 * _layers];
                for (var i = 0; i < next.Length; i++)
                {
                    // Copy out: the collection disposes what it returned.
                    var present = outputs[i + 1];
                    var shape = present.GetTensorTypeAndShape().Shape;
                    next[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, _kvType, shape);
                    present.GetTensorDataAsSpan<byte>().CopyTo(next[i].GetTensorMutableDataAsSpan<byte>());
                }
                foreach (var p in _past) p.Dispose();
                _past = next;
            }
        }
        finally
        {
            for (var i = 0; i < (_hasPositionIds ? 3 : 2); i++) values[i].Dispose();
        }

        var result = new float[_batch][][];
        for (var b = 0; b < _batch; b++)
        {
            if (_lastTokenOnly)
            {
                result[b] = [logits.AsSpan(b * _vocab, _vocab).ToArray()];
            }
            else
            {
                result[b] = new float[rows[b].Length][];
                for (var j = 0; j < rows[b].Length; j++)
                    result[b][j] = logits.AsSpan((b * s + j) * _vocab, _vocab).ToArray();
            }
            _lengths[b] += rows[b].Length;
        }
        return result;
    }

    public void Dispose()
    {
        foreach (var p in _past) p.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
    }
}
