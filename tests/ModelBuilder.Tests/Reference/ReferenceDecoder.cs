using System.Text.Json.Nodes;

namespace ChatServices.ModelBuilder.Tests.Reference;

/// <summary>
/// A plain, double-precision forward pass of a Llama-family decoder (Llama, Mistral, Qwen2), written from the
/// Hugging Face modelling code's definition and sharing nothing with the graph builder: it reads the folder's
/// <c>config.json</c> itself, computes its own rotary frequencies, and works token by token on one sequence with a
/// growing key/value cache. It is the oracle the ONNX graphs are checked against.
/// </summary>
public sealed class ReferenceDecoder
{
    private readonly Func<string, float[]> _weight;
    private readonly int _hidden, _heads, _kvHeads, _headDim, _intermediate, _vocab, _layers;
    private readonly double _eps;
    private readonly double[] _invFreq;
    private readonly double _ropeMagnitude = 1.0;
    private readonly bool _qkvBias, _outBias, _tied;
    private readonly int? _window;
    private readonly Dictionary<string, double[]> _cache = [];
    // Per layer, per cached position: keys (after rotary) and values, [kvHeads * headDim].
    private readonly List<double[]>[] _keys, _values;

    public ReferenceDecoder(JsonObject config, Func<string, float[]> weight)
    {
        _weight = weight;
        _hidden = (int)config["hidden_size"]!;
        _heads = (int)config["num_attention_heads"]!;
        _kvHeads = (int?)config["num_key_value_heads"] ?? _heads;
        _headDim = (int?)config["head_dim"] ?? _hidden / _heads;
        _intermediate = (int)config["intermediate_size"]!;
        _vocab = (int)config["vocab_size"]!;
        _layers = (int)config["num_hidden_layers"]!;
        _eps = (double?)config["rms_norm_eps"] ?? 1e-6;
        _tied = (bool?)config["tie_word_embeddings"] ?? false;
        var modelType = (string)config["model_type"]!;
        _qkvBias = modelType == "qwen2" || ((bool?)config["attention_bias"] ?? false);
        _outBias = modelType != "qwen2" && ((bool?)config["attention_bias"] ?? false);
        var useWindow = modelType == "mistral" || ((bool?)config["use_sliding_window"] ?? false);
        _window = useWindow ? (int?)config["sliding_window"] : null;

        // inv_freq[i] = theta^(-2i/d), then the rope scaling of the config.
        var theta = (double?)config["rope_theta"] ?? 10000.0;
        var half = _headDim / 2;
        _invFreq = new double[half];
        for (var i = 0; i < half; i++) _invFreq[i] = Math.Pow(theta, -2.0 * i / _headDim);
        if (config["rope_scaling"] is JsonObject scaling)
        {
            var type = (string?)scaling["rope_type"] ?? (string?)scaling["type"];
            var factor = (double)scaling["factor"]!;
            if (type == "linear")
            {
                for (var i = 0; i < half; i++) _invFreq[i] = _invFreq[i] / factor;
            }
            else if (type == "llama3")
            {
                var oldContext = (double)scaling["original_max_position_embeddings"]!;
                var low = (double?)scaling["low_freq_factor"] ?? 1.0;
                var high = (double?)scaling["high_freq_factor"] ?? 4.0;
                for (var i = 0; i < half; i++)
                {
                    var wavelen = 2 * Math.PI / _invFreq[i];
                    if (wavelen > oldContext / low) _invFreq[i] /= factor;
                    else if (wavelen >= oldContext / high)
                    {
                        var s = (oldContext / wavelen - low) / (high - low);
                        _invFreq[i] = (1 - s) * (_invFreq[i] / factor) + s * _invFreq[i];
                    }
                }
            }
            else if (type == "yarn")
            {
                var original = (double?)scaling["original_max_position_embeddings"] ?? (double)config["max_position_embeddings"]!;
                var betaFast = (double?)scaling["beta_fast"] ?? 32;
                var betaSlow = (double?)scaling["beta_slow"] ?? 1;
                double Dim(double rot) => _headDim * Math.Log(original / (rot * 2 * Math.PI)) / (2 * Math.Log(theta));
                var lo = Math.Max(Math.Floor(Dim(betaFast)), 0);
                var hi = Math.Min(Math.Ceiling(Dim(betaSlow)), _headDim - 1);
                if (lo == hi) hi += 0.001;
                for (var i = 0; i < half; i++)
                {
                    var extrapolate = 1 - Math.Min(Math.Max((i - lo) / (hi - lo), 0), 1);
                    _invFreq[i] = _invFreq[i] / factor * (1 - extrapolate) + _invFreq[i] * extrapolate;
                }
                _ropeMagnitude = (double?)scaling["attention_factor"] ?? 0.1 * Math.Log(factor) + 1;
            }
            else throw new NotSupportedException($"reference: rope type {type}");
        }

        _keys = new List<double[]>[_layers];
        _values = new List<double[]>[_layers];
        for (var l = 0; l < _layers; l++) { _keys[l] = []; _values[l] = []; }
    }

    /// <summary>Tokens already in the cache.</summary>
    public int Length => _keys[0].Count;

    /// <summary>Runs <paramref name="tokens"/> after what is cached; returns the logits of each, [tokens][vocab].</summary>
    public double[][] Forward(IReadOnlyList<long> tokens)
    {
        var result = new double[tokens.Count][];
        for (var t = 0; t < tokens.Count; t++) result[t] = Step(tokens[t]);
        return result;
    }

    private double[] Step(long token)
    {
        var position = Length;
        var embedding = W("model.embed_tokens.weight");
        var x = new double[_hidden];
        for (var i = 0; i < _hidden; i++) x[i] = embedding[token * _hidden + i];

        for (var l = 0; l < _layers; l++)
        {
            var p = $"model.layers.{l}.";
            var h = RmsNorm(x, W(p + "input_layernorm.weight"));
            var q = Linear(h, p + "self_attn.q_proj", _heads * _headDim, _qkvBias);
            var k = Linear(h, p + "self_attn.k_proj", _kvHeads * _headDim, _qkvBias);
            var v = Linear(h, p + "self_attn.v_proj", _kvHeads * _headDim, _qkvBias);
            Rotate(q, _heads, position);
            Rotate(k, _kvHeads, position);
            _keys[l].Add(k);
            _values[l].Add(v);

            var attended = new double[_heads * _headDim];
            var group = _heads / _kvHeads;
            var first = _window is { } w ? Math.Max(0, position - w + 1) : 0;
            for (var head = 0; head < _heads; head++)
            {
                var kvHead = head / group;
                var scores = new double[position + 1];
                var max = double.NegativeInfinity;
                for (var j = first; j <= position; j++)
                {
                    var dot = 0.0;
                    for (var d = 0; d < _headDim; d++) dot += q[head * _headDim + d] * _keys[l][j][kvHead * _headDim + d];
                    scores[j] = dot / Math.Sqrt(_headDim);
                    max = Math.Max(max, scores[j]);
                }
                var sum = 0.0;
                for (var j = first; j <= position; j++) { scores[j] = Math.Exp(scores[j] - max); sum += scores[j]; }
                for (var j = first; j <= position; j++)
                for (var d = 0; d < _headDim; d++)
                    attended[head * _headDim + d] += scores[j] / sum * _values[l][j][kvHead * _headDim + d];
            }
            var o = Linear(attended, p + "self_attn.o_proj", _hidden, _outBias);
            for (var i = 0; i < _hidden; i++) x[i] += o[i];

            h = RmsNorm(x, W(p + "post_attention_layernorm.weight"));
            var gate = Linear(h, p + "mlp.gate_proj", _intermediate, false);
            var up = Linear(h, p + "mlp.up_proj", _intermediate, false);
            for (var i = 0; i < _intermediate; i++) gate[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
            var down = Linear(gate, p + "mlp.down_proj", _hidden, false);
            for (var i = 0; i < _hidden; i++) x[i] += down[i];
        }

        var final = RmsNorm(x, W("model.norm.weight"));
        return Linear(final, _tied ? "model.embed_tokens" : "lm_head", _vocab, false);
    }

    private void Rotate(double[] vector, int heads, int position)
    {
        // Hugging Face's rotate_half convention: dimension i pairs with i + d/2.
        var half = _headDim / 2;
        for (var head = 0; head < heads; head++)
        for (var i = 0; i < half; i++)
        {
            var angle = position * _invFreq[i];
            double cos = Math.Cos(angle) * _ropeMagnitude, sin = Math.Sin(angle) * _ropeMagnitude;
            var a = vector[head * _headDim + i];
            var b = vector[head * _headDim + i + half];
            vector[head * _headDim + i] = a * cos - b * sin;
            vector[head * _headDim + i + half] = b * cos + a * sin;
        }
    }

    private double[] RmsNorm(double[] x, double[] gain)
    {
        var meanSquare = 0.0;
        foreach (var v in x) meanSquare += v * v;
        var scale = 1.0 / Math.Sqrt(meanSquare / x.Length + _eps);
        var y = new double[x.Length];
        for (var i = 0; i < x.Length; i++) y[i] = x[i] * scale * gain[i];
        return y;
    }

    private double[] Linear(double[] x, string name, int outFeatures, bool bias)
    {
        var weight = W(name + ".weight");
        var y = new double[outFeatures];
        for (var o = 0; o < outFeatures; o++)
        {
            var sum = 0.0;
            var row = o * x.Length;
            for (var i = 0; i < x.Length; i++) sum += weight[row + i] * x[i];
            y[o] = sum;
        }
        if (bias)
        {
            var b = W(name + ".bias");
            for (var o = 0; o < outFeatures; o++) y[o] += b[o];
        }
        return y;
    }

    private double[] W(string name)
    {
        if (_cache.TryGetValue(name, out var w)) return w;
        var f = _weight(name);
        w = new double[f.Length];
        for (var i = 0; i < f.Length; i++) w[i] = f[i];
        return _cache[name] = w;
    }
}
