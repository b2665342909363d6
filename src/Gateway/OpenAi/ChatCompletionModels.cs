using System.Text.Json.Serialization;

namespace ChatServices.Gateway.OpenAi;

// The OpenAI API's JSON shapes this gateway reads and writes. Property names map to snake_case through
// OpenAiJsonContext; nulls are written (OpenAI sends "logprobs": null, "refusal": null …). Unknown request
// fields are ignored, as OpenAI's own server ignores them.

/// <summary>What the chat and the legacy completion requests share: the model, sampling and streaming.</summary>
public abstract class CompletionRequestBase
{
    public string? Model { get; set; }
    public double? Temperature { get; set; }
    public double? TopP { get; set; }
    public int? MaxTokens { get; set; }
    public int? N { get; set; }

    [JsonConverter(typeof(StopSequencesConverter))]
    public List<string>? Stop { get; set; }

    public long? Seed { get; set; }
    public double? PresencePenalty { get; set; }
    public double? FrequencyPenalty { get; set; }
    public bool? Stream { get; set; }
    public StreamOptions? StreamOptions { get; set; }

    /// <summary>The end user, for abuse monitoring; accepted and not used.</summary>
    public string? User { get; set; }
}

/// <summary>The body of <c>POST /v1/chat/completions</c>.</summary>
public sealed class ChatCompletionRequest : CompletionRequestBase
{
    public List<ChatMessageBody>? Messages { get; set; }
    public int? MaxCompletionTokens { get; set; }
    public bool? Logprobs { get; set; }
    public int? TopLogprobs { get; set; }
}

public sealed class ChatMessageBody
{
    public string? Role { get; set; }

    /// <summary>A string, or an array of content parts of which only <c>text</c> parts are supported.</summary>
    [JsonConverter(typeof(MessageContentConverter))]
    public string? Content { get; set; }

    public string? Name { get; set; }
}

public sealed class StreamOptions
{
    public bool? IncludeUsage { get; set; }
}

/// <summary>A non-streaming chat completion.</summary>
public sealed class ChatCompletion
{
    public required string Id { get; init; }
    public string Object => "chat.completion";
    public required long Created { get; init; }
    public required string Model { get; init; }
    public required List<ChatCompletionChoice> Choices { get; init; }
    public required Usage Usage { get; init; }
    public string? SystemFingerprint => null;
}

public sealed class ChatCompletionChoice
{
    public required int Index { get; init; }
    public required AssistantMessage Message { get; init; }
    public ChoiceLogprobs? Logprobs { get; init; }
    public required string FinishReason { get; init; }
}

public sealed class AssistantMessage
{
    public string Role => "assistant";
    public required string Content { get; init; }
    public string? Refusal => null;
}

public sealed class ChoiceLogprobs
{
    public required List<TokenLogprobBody> Content { get; init; }
}

public sealed class TokenLogprobBody
{
    public required string Token { get; init; }
    public required float Logprob { get; init; }
    public required int[] Bytes { get; init; }
    public required List<TopLogprobBody> TopLogprobs { get; init; }
}

public sealed class TopLogprobBody
{
    public required string Token { get; init; }
    public required float Logprob { get; init; }
    public required int[] Bytes { get; init; }
}

public sealed class Usage
{
    public required int PromptTokens { get; init; }
    public required int CompletionTokens { get; init; }
    public int TotalTokens => PromptTokens + CompletionTokens;
    public required PromptTokensDetails PromptTokensDetails { get; init; }
}

public sealed class PromptTokensDetails
{
    public required int CachedTokens { get; init; }
}

/// <summary><c>GET /v1/models</c>.</summary>
public sealed class ModelList
{
    public string Object => "list";
    public required List<ModelBody> Data { get; init; }
}

/// <summary><c>GET /v1/models/{id}</c>, and an entry of <see cref="ModelList"/>.</summary>
public sealed class ModelBody
{
    public required string Id { get; init; }
    public string Object => "model";
    public required long Created { get; init; }
    public required string OwnedBy { get; init; }

    /// <summary>Not in OpenAI's schema; vLLM and others add it, and clients ignore what they do not know.</summary>
    public required int MaxModelLen { get; init; }
}

/// <summary>The body of <c>POST /v1/completions</c> (the legacy text completion API).</summary>
public sealed class CompletionRequest : CompletionRequestBase
{
    /// <summary>A string, or an array holding one string.</summary>
    [JsonConverter(typeof(PromptConverter))]
    public string? Prompt { get; set; }

    /// <summary>The legacy API's logprobs is a count of top tokens (not supported here).</summary>
    public int? Logprobs { get; set; }

    public bool? Echo { get; set; }
    public string? Suffix { get; set; }
    public int? BestOf { get; set; }
}

public sealed class TextCompletion
{
    public required string Id { get; init; }
    public string Object => "text_completion";
    public required long Created { get; init; }
    public required string Model { get; init; }
    public required List<TextCompletionChoice> Choices { get; init; }
    public required Usage Usage { get; init; }
    public string? SystemFingerprint => null;
}

public sealed class TextCompletionChoice
{
    public required int Index { get; init; }
    public required string Text { get; init; }
    public object? Logprobs => null;
    public required string FinishReason { get; init; }
}
