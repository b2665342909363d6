using System.Text.Json.Serialization;

namespace ChatServices.Gateway.OpenAi;

// The OpenAI API's JSON shapes this gateway reads and writes. Property names map to snake_case through
// OpenAiJsonContext; nulls are written (OpenAI sends "logprobs": null, "refusal": null …). A request field this
// gateway does not know lands in ExtraFields and is refused by name (RequestFields), never silently ignored.

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

    /// <summary>Every other top-level field of the body, by name as sent; see <see cref="RequestFields"/>.</summary>
    [JsonExtensionData]
    public Dictionary<string, System.Text.Json.JsonElement>? ExtraFields { get; set; }
}

/// <summary>The body of <c>POST /v1/chat/completions</c>.</summary>
public sealed class ChatCompletionRequest : CompletionRequestBase
{
    public List<ChatMessageBody>? Messages { get; set; }
    public int? MaxCompletionTokens { get; set; }
    public bool? Logprobs { get; set; }
    public int? TopLogprobs { get; set; }
    public ResponseFormatBody? ResponseFormat { get; set; }
    public List<ToolBody>? Tools { get; set; }

    /// <summary>"none", "auto", "required", or <c>{"type": "function", "function": {"name": …}}</c>.</summary>
    public System.Text.Json.JsonElement? ToolChoice { get; set; }

    public bool? ParallelToolCalls { get; set; }
}

public sealed class ChatMessageBody
{
    public string? Role { get; set; }

    /// <summary>A string, or an array of content parts of which only <c>text</c> parts are supported.</summary>
    [JsonConverter(typeof(MessageContentConverter))]
    public string? Content { get; set; }

    public string? Name { get; set; }

    /// <summary>Assistant messages: the calls the model made (then content may be null).</summary>
    public List<ToolCallBody>? ToolCalls { get; set; }

    /// <summary>Tool messages: the call this message is the result of.</summary>
    public string? ToolCallId { get; set; }

    /// <summary>Every other field of the message, by name as sent; see <see cref="RequestFields"/>.</summary>
    [JsonExtensionData]
    public Dictionary<string, System.Text.Json.JsonElement>? ExtraFields { get; set; }
}

/// <summary><c>response_format</c>: <c>{"type": "text" | "json_object" | "json_schema", "json_schema": {…}}</c>.</summary>
public sealed class ResponseFormatBody
{
    public string? Type { get; set; }
    public JsonSchemaFormatBody? JsonSchema { get; set; }
}

public sealed class JsonSchemaFormatBody
{
    public string? Name { get; set; }
    public string? Description { get; set; }
    public System.Text.Json.JsonElement? Schema { get; set; }
    public bool? Strict { get; set; }
}

/// <summary>An entry of <c>tools</c>: <c>{"type": "function", "function": {name, description, parameters, strict}}</c>.</summary>
public sealed class ToolBody
{
    public string? Type { get; set; }
    public FunctionDefinitionBody? Function { get; set; }
}

public sealed class FunctionDefinitionBody
{
    public string? Name { get; set; }
    public string? Description { get; set; }
    public System.Text.Json.JsonElement? Parameters { get; set; }
    public bool? Strict { get; set; }
}

/// <summary>A tool call, in an assistant message of the request or of a reply.</summary>
public sealed class ToolCallBody
{
    public string? Id { get; set; }
    public string? Type { get; set; } = "function";
    public FunctionCallBody? Function { get; set; }
}

public sealed class FunctionCallBody
{
    public string? Name { get; set; }

    /// <summary>The arguments as JSON text (a string holding a JSON object), as OpenAI sends them.</summary>
    public string? Arguments { get; set; }
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

    /// <summary>Null when the reply only calls tools.</summary>
    public required string? Content { get; init; }

    public string? Refusal => null;

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<ToolCallBody>? ToolCalls { get; init; }
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
