namespace ChatServices.ModelBuilder.Architectures;

/// <summary>
/// The cos/sin tables GroupQueryAttention's rotary step reads: row p holds cos(p·θᵢ) and sin(p·θᵢ) for the
/// head_dim/2 frequencies θᵢ = rope_theta^(−2i/head_dim), adjusted by the config's rope scaling exactly as Hugging
/// Face's rope initialisers do (linear, llama3, yarn). Computed in double, stored as float.
/// </summary>
public static class RotaryTables
{
    public static double[] InverseFrequencies(DecoderConfig config)
    {
        var dim = config.HeadDim;
        var half = dim / 2;
        var inv = new double[half];
        for (var i = 0; i < half; i++) inv[i] = 1.0 / Math.Pow(config.RopeTheta, 2.0 * i / dim);

        switch (config.RopeScaling)
        {
            case null:
                break;
            case { Type: "linear" } s:
                for (var i = 0; i < half; i++) inv[i] /= s.Factor;
                break;
            case { Type: "llama3" } s:
                {
                    // Long wavelengths (low frequencies) are interpolated by the factor, short ones kept, with a
                    // smooth blend between original/low_freq_factor and original/high_freq_factor.
                    double original = s.OriginalMaxPositionEmbeddings!.Value;
                    var lowFreqWavelength = original / s.LowFreqFactor;
                    var highFreqWavelength = original / s.HighFreqFactor;
                    for (var i = 0; i < half; i++)
                    {
                        var wavelength = 2 * Math.PI / inv[i];
                        if (wavelength < highFreqWavelength) continue;
                        if (wavelength > lowFreqWavelength) { inv[i] /= s.Factor; continue; }
                        var smooth = (original / wavelength - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                        inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
                    }
                    break;
                }
            case { Type: "yarn" } s:
                {
                    double original = s.OriginalMaxPositionEmbeddings!.Value;
                    double CorrectionDim(double rotations) =>
                        dim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(config.RopeTheta));
                    var low = Math.Max(Math.Floor(CorrectionDim(s.BetaFast)), 0);
                    var high = Math.Min(Math.Ceiling(CorrectionDim(s.BetaSlow)), dim - 1);
                    if (low == high) high += 0.001;
                    for (var i = 0; i < half; i++)
                    {
                        var ramp = Math.Clamp((i - low) / (high - low), 0, 1);
                        var extrapolation = 1 - ramp;
                        inv[i] = inv[i] / s.Factor * (1 - extrapolation) + inv[i] * extrapolation;
                    }
                    break;
                }
            default:
                throw new ModelBuilderException($"Unsupported rope_scaling type '{config.RopeScaling.Type}'.");
        }
        return inv;
    }

    /// <summary>The factor yarn applies to cos and sin (1 for every other scaling).</summary>
    public static double AttentionFactor(DecoderConfig config) => config.RopeScaling switch
    {
        { Type: "yarn", AttentionFactor: { } f } => f,
        { Type: "yarn", Factor: > 1 } s => 0.1 * Math.Log(s.Factor) + 1.0,
        _ => 1.0,
    };

    /// <summary>cos and sin, each [context_length, head_dim/2] row-major.</summary>
    public static (float[] Cos, float[] Sin) Build(DecoderConfig config)
    {
        var inv = InverseFrequencies(config);
        var scale = AttentionFactor(config);
        var half = inv.Length;
        var cos = new float[config.ContextLength * half];
        var sin = new float[cos.Length];
        for (var p = 0; p < config.ContextLength; p++)
        for (var i = 0; i < half; i++)
        {
            var angle = p * inv[i];
            cos[p * half + i] = (float)(Math.Cos(angle) * scale);
            sin[p * half + i] = (float)(Math.Sin(angle) * scale);
        }
        return (cos, sin);
    }
}
