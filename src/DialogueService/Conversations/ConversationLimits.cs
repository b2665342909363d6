namespace ChatServices.DialogueService.Conversations;

/// <summary>
/// The bounds every store enforces before touching the database, so that bad input is refused with a clear
/// <see cref="ConversationValidationException"/> and no request can write unbounded rows.
/// </summary>
public static class ConversationLimits
{
    public const int MaxOwnerIdLength = 256;
    public const int MaxTitleLength = 256;
    public const int MaxSystemPromptLength = 100_000;
    public const int MaxMessageLength = 1_000_000;
    public const int MaxMetadataEntries = 16;
    public const int MaxMetadataKeyLength = 64;
    public const int MaxMetadataValueLength = 512;
    public const int MaxFinishReasonLength = 64;
    public const int MaxErrorLength = 4_096;
    public const int MinPageSize = 1;
    public const int MaxPageSize = 100;

    internal static void OwnerId(string ownerId)
    {
        if (string.IsNullOrWhiteSpace(ownerId))
            throw new ConversationValidationException(nameof(ownerId), "The owner id must not be empty.");
        MaxLength(ownerId, MaxOwnerIdLength, nameof(ownerId));
    }

    internal static string Title(string? title)
    {
        title = title?.Trim() ?? "";
        MaxLength(title, MaxTitleLength, nameof(title));
        return title;
    }

    internal static void SystemPrompt(string? systemPrompt)
    {
        if (systemPrompt is not null) MaxLength(systemPrompt, MaxSystemPromptLength, nameof(systemPrompt));
    }

    internal static void Metadata(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata is null) return;
        if (metadata.Count > MaxMetadataEntries)
            throw new ConversationValidationException(nameof(metadata),
                $"Metadata has {metadata.Count} entries; at most {MaxMetadataEntries} are allowed.");
        foreach (var (key, value) in metadata)
        {
            if (string.IsNullOrEmpty(key))
                throw new ConversationValidationException(nameof(metadata), "Metadata keys must not be empty.");
            MaxLength(key, MaxMetadataKeyLength, "metadata key");
            if (value is null)
                throw new ConversationValidationException(nameof(metadata), $"Metadata value of '{key}' is null.");
            MaxLength(value, MaxMetadataValueLength, $"metadata value of '{key}'");
        }
    }

    internal static void Role(MessageRole role)
    {
        if (!Enum.IsDefined(role))
            throw new ConversationValidationException(nameof(role), $"Unknown message role {(int)role}.");
    }

    internal static void Content(string content)
    {
        if (content is null)
            throw new ConversationValidationException(nameof(content), "Message content must not be null.");
        MaxLength(content, MaxMessageLength, nameof(content));
        // PostgreSQL text cannot hold U+0000; refused the same way whichever store is configured.
        if (content.Contains('\0'))
            throw new ConversationValidationException(nameof(content), "Message content must not contain the character U+0000.");
    }

    internal static void FinalStatus(MessageStatus status, string paramName)
    {
        if (status is not (MessageStatus.Completed or MessageStatus.Cancelled or MessageStatus.Failed))
            throw new ConversationValidationException(paramName,
                $"Status must be completed, cancelled or failed, not {status}.");
    }

    /// <summary>A tool message names the call it answers (at most 64 characters); no other message does.</summary>
    internal static void ToolCallId(MessageRole role, string? toolCallId)
    {
        if (role == MessageRole.Tool && string.IsNullOrEmpty(toolCallId))
            throw new ConversationValidationException("tool_call_id", "A tool message must name the tool call it answers.");
        if (role != MessageRole.Tool && toolCallId is not null)
            throw new ConversationValidationException("tool_call_id", "Only a tool message answers a tool call.");
        if (toolCallId is not null) MaxLength(toolCallId, 64, "tool_call_id");
    }

    internal static void Outcome(AssistantOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        FinalStatus(outcome.Status, "outcome.Status");
        Content(outcome.Content);
        if (outcome.FinishReason is not null) MaxLength(outcome.FinishReason, MaxFinishReasonLength, "finishReason");
        if (outcome.Status == MessageStatus.Failed && string.IsNullOrWhiteSpace(outcome.Error))
            throw new ConversationValidationException("outcome.Error", "A failed generation needs an error.");
        if (outcome.Status != MessageStatus.Failed && outcome.Error is not null)
            throw new ConversationValidationException("outcome.Error", "Only a failed generation has an error.");
        if (outcome.Error is not null) MaxLength(outcome.Error, MaxErrorLength, "error");
        if (outcome.Usage is { PromptTokens: < 0 } or { CompletionTokens: < 0 })
            throw new ConversationValidationException("outcome.Usage", "Token counts must not be negative.");
    }

    internal static void PageSize(int pageSize)
    {
        if (pageSize is < MinPageSize or > MaxPageSize)
            throw new ConversationValidationException(nameof(pageSize),
                $"Page size must be between {MinPageSize} and {MaxPageSize}; it was {pageSize}.");
    }

    private static void MaxLength(string value, int max, string what)
    {
        if (value.Length > max)
            throw new ConversationValidationException(what,
                $"The {what} is {value.Length} characters long; at most {max} are allowed.");
    }
}
