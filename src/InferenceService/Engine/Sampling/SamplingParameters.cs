namespace ChatServices.InferenceService.Engine.Sampling;

/// <summary>
/// How the next token is chosen from the logits. Defaults leave the distribution unchanged; a temperature of 0 is
/// greedy decoding (arg-max, ties to the lowest token id). Validated by <see cref="RequestValidation"/>.
/// </summary>
public sealed record SamplingParameters
{
    public static readonly SamplingParameters Greedy = new() { Temperature = 0 };

    /// <summary>Divides the logits; 0 means greedy. Range [0, 100].</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Keeps the smallest set of most likely tokens whose probability sums to at least this. Range (0, 1].</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Keeps the k most likely tokens; 0 keeps all.</summary>
    public int TopK { get; init; }

    /// <summary>Drops tokens less likely than min_p times the most likely one. Range [0, 1].</summary>
    public float MinP { get; init; }

    /// <summary>Divides positive (multiplies negative) logits of tokens already in the prompt or output; 1 is off.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>Subtracted once from the logit of every token already generated. Range [-2, 2].</summary>
    public float PresencePenalty { get; init; }

    /// <summary>Subtracted from a token's logit once per time it was generated. Range [-2, 2].</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Seeds the request's random stream: the same seed and inputs give the same output.</summary>
    public ulong? Seed { get; init; }

    public bool IsGreedy => Temperature == 0f;

    public bool HasPenalties => RepetitionPenalty != 1f || PresencePenalty != 0f || FrequencyPenalty != 0f;
}
