namespace ChatServices.DialogueService.Conversations;

/// <summary>Who wrote a message. Stored as its lower-case name.</summary>
public enum MessageRole
{
    System,
    User,
    Assistant,
    Tool,
}

/// <summary>
/// Where a message is in its life. Every message but an assistant reply being generated is written once, final.
/// An assistant reply is <see cref="InProgress"/> from <see cref="IConversationStore.BeginAssistantMessageAsync"/>
/// until <see cref="IConversationStore.CompleteAssistantMessageAsync"/> moves it, once, to one of the three
/// final states.
/// </summary>
public enum MessageStatus
{
    Completed,
    InProgress,
    /// <summary>Generation was stopped by the caller; the content is what had been produced.</summary>
    Cancelled,
    /// <summary>Generation failed; the content is what had been produced, the error says why.</summary>
    Failed,
}

/// <summary>Token counts of one generation.</summary>
public sealed record TokenUsage(int PromptTokens, int CompletionTokens);

/// <summary>A conversation without its messages. Timestamps are UTC with microsecond precision.</summary>
public sealed record Conversation(
    Guid Id,
    string OwnerId,
    string Title,
    string? SystemPrompt,
    IReadOnlyDictionary<string, string> Metadata,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    long MessageCount);

/// <summary>
/// One message. <see cref="Sequence"/> numbers a conversation's messages 1, 2, 3… in the order they were
/// appended, with no gaps: it is the total order of the conversation, even under concurrent appends.
/// <see cref="ParentId"/> is the message it follows (null for a first message): a conversation is a tree, and an
/// edited message or a regenerated reply is a sibling of the one it replaces, which stays reachable.
/// An assistant reply that called tools holds <see cref="ToolCalls"/> (its content may then be empty); a
/// <see cref="MessageRole.Tool"/> message holds a call's result and names the call in <see cref="ToolCallId"/>.
/// </summary>
public sealed record ConversationMessage(
    Guid Id,
    Guid ConversationId,
    long Sequence,
    MessageRole Role,
    string Content,
    MessageStatus Status,
    string? FinishReason,
    TokenUsage? Usage,
    string? Error,
    DateTimeOffset CreatedAt,
    DateTimeOffset? CompletedAt,
    Guid? ParentId = null,
    IReadOnlyList<Tools.FunctionCall>? ToolCalls = null,
    string? ToolCallId = null);

/// <summary>A conversation with its messages in sequence order (empty when they were not asked for).</summary>
public sealed record ConversationDetail(Conversation Conversation, IReadOnlyList<ConversationMessage> Messages);

/// <summary>One page of a listing; <see cref="NextPageToken"/> is null on the last page.</summary>
public sealed record ConversationPage(IReadOnlyList<Conversation> Conversations, string? NextPageToken);

/// <summary>How a generation ended: the final state of an assistant message.</summary>
/// <param name="Status">Completed, Cancelled or Failed.</param>
/// <param name="Content">The text produced; partial for Cancelled and Failed.</param>
/// <param name="FinishReason">Why generation stopped ("stop", "length", …), when it did so by itself.</param>
/// <param name="Error">What went wrong; required for Failed, not allowed otherwise.</param>
/// <param name="ToolCalls">The tools the reply called, if any.</param>
public sealed record AssistantOutcome(
    MessageStatus Status,
    string Content,
    string? FinishReason = null,
    TokenUsage? Usage = null,
    string? Error = null,
    IReadOnlyList<Tools.FunctionCall>? ToolCalls = null);
