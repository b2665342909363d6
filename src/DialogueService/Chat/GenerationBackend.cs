namespace ChatServices.DialogueService.Chat;

/// <summary>
/// Where token ids are generated: InferenceService over gRPC in production (<see cref="Inference.InferenceGenerationBackend"/>).
/// The chat pipeline sees only this, so that how replicas are chosen, retried and broken off stays in one place.
/// </summary>
public interface IGenerationBackend
{
    /// <summary>
    /// Streams the generation's events. Errors surface as <see cref="Grpc.Core.RpcException"/> with the
    /// status the caller should see (RESOURCE_EXHAUSTED when the inference tier is full, UNAVAILABLE when no
    /// replica answers, INVALID_ARGUMENT for parameters it refuses). Cancelling the token ends the generation
    /// upstream and frees its capacity.
    /// </summary>
    IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken);
}

/// <summary>Validated sampling settings (the ranges are those of chat.v1.GenerationSettings).</summary>
public sealed record GenerationParameters
{
    public required int MaxNewTokens { get; init; }
    public float Temperature { get; init; } = 1f;
    public float TopP { get; init; } = 1f;
    public int TopK { get; init; }
    public float MinP { get; init; }
    public float PresencePenalty { get; init; }
    public float FrequencyPenalty { get; init; }
    public float RepetitionPenalty { get; init; } = 1f;
    public ulong? Seed { get; init; }
    public int N { get; init; } = 1;
    public bool Logprobs { get; init; }
    public int TopLogprobs { get; init; }
}

/// <param name="PromptTokenIds">The rendered, tokenized prompt.</param>
/// <param name="StopTokenIds">Token ids that end a choice (the model's end-of-turn tokens).</param>
/// <param name="AffinityKey">The conversation id: generations of one conversation prefer one replica.</param>
/// <param name="Constraint">The formal language the output must belong to (chat.v1.Constraint); null: free text.</param>
public sealed record GenerationRequest(
    int[] PromptTokenIds,
    GenerationParameters Parameters,
    IReadOnlyList<int> StopTokenIds,
    string? AffinityKey,
    Protos.Chat.V1.Constraint? Constraint = null);

public abstract record GenerationEvent;

/// <summary>A candidate token and its log probability.</summary>
public readonly record struct TokenCandidate(int TokenId, float Logprob);

/// <summary>One new token of one choice.</summary>
/// <param name="Logprob">Set when logprobs were asked for.</param>
/// <param name="TopCandidates">The most likely tokens at this step, when top_logprobs > 0.</param>
public sealed record TokenGenerated(int Choice, int TokenId, float? Logprob, IReadOnlyList<TokenCandidate>? TopCandidates) : GenerationEvent;

public enum GenerationFinishReason
{
    /// <summary>A stop token (end of turn).</summary>
    Stop,
    /// <summary>max_new_tokens or the context window.</summary>
    Length,
}

/// <summary>A choice ended by itself.</summary>
public sealed record ChoiceFinished(int Choice, GenerationFinishReason Reason) : GenerationEvent;

/// <summary>Token counts, sent once at the end.</summary>
public sealed record GenerationUsage(int PromptTokens, int CompletionTokens, int CachedPromptTokens) : GenerationEvent;
