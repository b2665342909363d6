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
    public required string Role { get; init; }
    public required string Content { get; init; }

    /// <summary>"complete", "cancelled" or "failed".</summary>
    public required string Status { get; init; }

    public required string FinishReason { get; init; }
    public required DateTimeOffset? CreatedAt { get; init; }
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

public sealed class RenameConversationBody
{
    public string? Title { get; set; }
}

/// <summary>A new user message (or, with <c>regenerate</c>, a new take on the last reply) and how to generate.</summary>
public sealed class SendMessageBody
{
    public string? Content { get; set; }
    public bool? Regenerate { get; set; }
    public double? Temperature { get; set; }
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
