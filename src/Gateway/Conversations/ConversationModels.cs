using System.Text.Json.Serialization;

namespace ChatServices.Gateway.Conversations;

// The JSON the web page exchanges with /api/conversations (snake_case, like the OpenAI API beside it).

public sealed class ConversationBody
{
    public required string Id { get; init; }
    public required string Title { get; init; }
    public required string SystemPrompt { get; init; }
    public required DateTimeOffset? CreatedAt { get; init; }
    public required DateTimeOffset? UpdatedAt { get; init; }

    /// <summary>Only when the conversation was fetched by id.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<MessageBody>? Messages { get; init; }
}

public sealed class MessageBody
{
    public required string Id { get; init; }

    /// <summary>"system", "user", "assistant" or "tool".</summary>
    public required string Role { get; init; }

    /// <summary>Null for an assistant reply that only called tools.</summary>
    public required string? Content { get; init; }

    /// <summary>"complete", "cancelled" or "failed".</summary>
    public required string Status { get; init; }

    public required string FinishReason { get; init; }
    public required DateTimeOffset? CreatedAt { get; init; }

    /// <summary>The message this one follows; null for a first message. Messages with one parent are alternatives (edits, regenerations).</summary>
    public required string? ParentId { get; init; }

    /// <summary>Assistant replies: the tokens they took; null when not known.</summary>
    public required MessageUsage? Usage { get; init; }

    /// <summary>Assistant replies that called tools: the calls, in order.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<MessageToolCall>? ToolCalls { get; init; }

    /// <summary>Tool messages: the call this is the result of.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ToolCallId { get; init; }
}

public sealed class MessageToolCall
{
    public required string Id { get; init; }
    public required string Name { get; init; }

    /// <summary>The arguments' JSON text, as the model wrote it.</summary>
    public required string Arguments { get; init; }
}

public sealed class MessageUsage
{
    public required int PromptTokens { get; init; }
    public required int CompletionTokens { get; init; }
}

public sealed class ConversationPage
{
    public required List<ConversationBody> Conversations { get; init; }
    public required string? NextPageToken { get; init; }
}

public sealed class CreateConversationBody
{
    public string? Title { get; set; }
    public string? SystemPrompt { get; set; }
}

/// <summary>A new title, a new system prompt ("" for none), or both.</summary>
public sealed class RenameConversationBody
{
    public string? Title { get; set; }
    public string? SystemPrompt { get; set; }
}

/// <summary>
/// A new user message (or, with <c>regenerate</c>, a new take on a reply; with <c>continue</c>, more of the reply named
/// by <c>parent_message_id</c>) and how to generate.
/// </summary>
public sealed class SendMessageBody
{
    public string? Content { get; set; }
    public bool? Regenerate { get; set; }
    public bool? Continue { get; set; }

    /// <summary>
    /// Where the turn goes in the conversation's tree: the message the new one follows ("" for a new first message,
    /// which is how the first message is edited), or with <c>regenerate</c> the user message (or reply) to answer
    /// again. Absent: after the latest message.
    /// </summary>
    public string? ParentMessageId { get; set; }

    public double? Temperature { get; set; }
    public double? TopP { get; set; }
    public int? MaxTokens { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(ConversationBody))]
[JsonSerializable(typeof(ConversationPage))]
[JsonSerializable(typeof(CreateConversationBody))]
[JsonSerializable(typeof(RenameConversationBody))]
[JsonSerializable(typeof(SendMessageBody))]
internal sealed partial class ConversationsJsonContext : JsonSerializerContext;
