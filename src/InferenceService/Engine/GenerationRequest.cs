using ChatServices.InferenceService.Engine.Constraints;
using ChatServices.InferenceService.Engine.Sampling;

namespace ChatServices.InferenceService.Engine;

/// <summary>One generation request, in token ids. Checked by <see cref="RequestValidation"/> before it is queued.</summary>
public sealed record GenerationRequest
{
    public required int[] PromptTokenIds { get; init; }
    public SamplingParameters Sampling { get; init; } = new();

    /// <summary>Most tokens to generate per sequence; null means up to the context length.</summary>
    public int? MaxNewTokens { get; init; }

    /// <summary>Token ids that end a sequence (besides the model's end-of-sequence ids). The stop token is emitted.</summary>
    public int[] StopTokenIds { get; init; } = [];

    /// <summary>Keep generating past the model's end-of-sequence ids (stop token ids still stop).</summary>
    public bool IgnoreEos { get; init; }

    /// <summary>Independent samples for the prompt (the prompt is computed once and its KV shared).</summary>
    public int N { get; init; } = 1;

    /// <summary>Report each chosen token's log-probability.</summary>
    public bool Logprobs { get; init; }

    /// <summary>Also report this many most likely alternatives per position (0–20).</summary>
    public int TopLogprobs { get; init; }

    /// <summary>Beam search instead of sampling; null for sampling.</summary>
    public BeamSearchParameters? BeamSearch { get; init; }

    /// <summary>Caller's id for logs and traces.</summary>
    public string? RequestId { get; init; }

    /// <summary>A formal language every sequence's output must belong to; null for none.</summary>
    public ConstraintSpec? Constraint { get; init; }
}

/// <summary>Beam search settings.</summary>
/// <param name="NumBeams">Beams kept per step (1 is greedy).</param>
/// <param name="LengthPenalty">Final score = sum of log-probabilities / length^LengthPenalty.</param>
/// <param name="EarlyStopping">Stop as soon as NumBeams hypotheses are finished.</param>
public sealed record BeamSearchParameters(int NumBeams, float LengthPenalty = 1f, bool EarlyStopping = false);

/// <summary>Why a sequence ended.</summary>
public enum FinishReason
{
    /// <summary>An end-of-sequence or stop token was generated.</summary>
    Stop,

    /// <summary>The token limit (max new tokens or the context length) was reached.</summary>
    Length,
}

/// <summary>What the engine streams back for a request: token steps, then exactly one completion.</summary>
public abstract record GenerationEvent;

/// <summary>A token generated in one step for one sequence of the request.</summary>
public readonly record struct GeneratedToken(int SequenceIndex, int TokenId, float Logprob, TokenLogprob[]? TopLogprobs);

/// <summary>The tokens one engine step generated for a request (one per sequence that advanced).</summary>
public sealed record TokensGenerated(GeneratedToken[] Tokens) : GenerationEvent;

/// <summary>One finished sequence. <see cref="Score"/>: cumulative log-probability, or the beam score.</summary>
public sealed record CompletedSequence(int Index, int[] TokenIds, FinishReason FinishReason, double Score);

/// <summary>Token counts and latency of a finished request.</summary>
/// <param name="QueueSeconds">From arrival to admission into the running batch.</param>
/// <param name="TimeToFirstTokenSeconds">From arrival to the first generated token (queueing and prefill).</param>
/// <param name="DurationSeconds">From arrival to the end.</param>
public sealed record GenerationUsage(int PromptTokens, int CompletionTokens, int CachedPromptTokens, double TimeToFirstTokenSeconds,
    double QueueSeconds = 0, double DurationSeconds = 0);

/// <summary>The last event of a request: every sequence (best beam first for beam search) and usage.</summary>
public sealed record GenerationCompleted(CompletedSequence[] Sequences, GenerationUsage Usage) : GenerationEvent;

/// <summary>A request parameter is out of range; <see cref="Field"/> names it as the API spells it.</summary>
public sealed class InvalidRequestException(string field, string message) : ArgumentException($"{field}: {message}", field)
{
    public string Field { get; } = field;

    /// <summary>"field: message", without ArgumentException's "(Parameter ...)" suffix: it is what clients read.</summary>
    public override string Message { get; } = $"{field}: {message}";
}

/// <summary>The waiting queue is full: the request was refused without queueing.</summary>
public sealed class QueueFullException(string message) : InvalidOperationException(message);

/// <summary>The engine is shutting down: it takes no new request, or it stopped this one after the drain time.</summary>
public sealed class EngineShutdownException(string message) : InvalidOperationException(message);
