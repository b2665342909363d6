using System.Globalization;
using System.Text;
using System.Text.Json;
using ChatServices.Protos.Chat.V1;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using ProtoChatMessage = ChatServices.Protos.Chat.V1.ChatMessage;

namespace ChatServices.Client;

/// <summary>
/// Messages and <see cref="ChatOptions"/> to a <c>chat.v1.Dialogue/Chat</c> request. Whatever the Chat RPC cannot
/// honour is refused here — <see cref="NotSupportedException"/> for features the service lacks (non-function tools,
/// non-text content), <see cref="ArgumentException"/> for values it cannot take — never dropped. Function tools,
/// tool modes and response formats map to the request's tools, tool choice and constraint; function calls and
/// results in the history to assistant tool calls and tool messages.
/// </summary>
internal static class ChatRequestMapper
{
    /// <summary><see cref="ChatOptions.AdditionalProperties"/> keys that map to Chat settings with no ChatOptions property.</summary>
    public const string MinP = "min_p", RepetitionPenalty = "repetition_penalty", Regenerate = "regenerate";

    /// <summary>Function arguments and results as the service stores them: compact JSON.</summary>
    private static readonly JsonSerializerOptions CompactJson = new(AIJsonUtilities.DefaultOptions) { WriteIndented = false };

    public static ChatRequest Map(IChatClient client, IEnumerable<AiChatMessage> messages, ChatOptions? options, string? ownerId)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var request = options?.RawRepresentationFactory?.Invoke(client) switch
        {
            null => new ChatRequest(),
            ChatRequest raw => raw.Clone(),
            var other => throw new ArgumentException(
                $"ChatOptions.RawRepresentationFactory returned a {other.GetType().Name}; it must return a chat.v1 ChatRequest.", nameof(options)),
        };
        if (request.OwnerId.Length == 0 && ownerId is not null) request.OwnerId = ownerId;
        var settings = request.Settings ??= new GenerationSettings();

        var additional = options?.AdditionalProperties;
        var regenerate = additional is not null && additional.TryGetValue(Regenerate, out var r) && ToBool(r, Regenerate);
        if (options?.ConversationId is { } conversationId)
            MapConversationTurn(request, conversationId, [.. messages], options, regenerate);
        else
        {
            if (regenerate) throw new ArgumentException($"AdditionalProperties[\"{Regenerate}\"] needs ChatOptions.ConversationId: only a stored conversation's reply can be generated again.", nameof(options));
            MapStatelessChat(request, messages, options?.Instructions);
        }
        if (options is not null)
        {
            MapSettings(settings, options);
            MapToolsAndFormat(request, options);
        }
        if (settings.N > 1)
            throw new NotSupportedException($"n = {settings.N}: an IChatClient response is one choice; ask for several with the typed Dialogue client.");
        return request;
    }

    private static void MapConversationTurn(ChatRequest request, string conversationId, IReadOnlyList<AiChatMessage> messages, ChatOptions options, bool regenerate)
    {
        if (string.IsNullOrWhiteSpace(conversationId)) throw new ArgumentException("ChatOptions.ConversationId is empty.", nameof(options));
        if (options.Instructions is not null)
            throw new NotSupportedException("ChatOptions.Instructions cannot be used with a stored conversation: its system prompt is set when the conversation is created.");
        request.ConversationId = conversationId;
        if (regenerate)
        {
            if (messages.Count != 0)
                throw new ArgumentException($"With AdditionalProperties[\"{Regenerate}\"], send no messages: the conversation's last reply is generated again.", nameof(messages));
            request.Regenerate = true;
            return;
        }
        // A stateful client is sent only what is new: DialogueService stores the turn and keeps the history. After a
        // reply that called tools, what is new is the calls (already stored with the reply) and their results.
        if (messages.Count > 0 && messages[^1].Role == ChatRole.Tool)
        {
            foreach (var message in messages)
            {
                if (message.Role == ChatRole.Tool) AddToolResults(request.ToolResults, message);
                else if (message.Role != ChatRole.Assistant || message.Contents.Any(c => c is not (FunctionCallContent or UsageContent)))
                    throw new ArgumentException("With ChatOptions.ConversationId, after a reply that called tools send only their results (and the calls).", nameof(messages));
            }
            return;
        }
        if (messages.Count != 1 || messages[0].Role != ChatRole.User)
            throw new ArgumentException(
                "With ChatOptions.ConversationId, send only the new user message: the conversation's history is stored by the service " +
                $"(got {messages.Count} message(s){(messages.Count == 1 ? $" with role '{messages[0].Role}'" : "")}).", nameof(messages));
        request.UserMessage = TextOf(messages[0]);
    }

    private static void MapStatelessChat(ChatRequest request, IEnumerable<AiChatMessage> messages, string? instructions)
    {
        if (request.Prompt.Length > 0)
        {
            // A raw completion prompt from RawRepresentationFactory is the whole input.
            if (messages.Any() || instructions is not null)
                throw new ArgumentException("A ChatRequest with a raw prompt takes no messages or instructions.", nameof(messages));
            return;
        }
        if (instructions is not null) request.Messages.Add(new ProtoChatMessage { Role = "system", Content = instructions });
        foreach (var message in messages)
        {
            if (message.Role == ChatRole.Tool)
            {
                AddToolResults(request.Messages, message);
                continue;
            }
            var proto = new ProtoChatMessage { Role = RoleOf(message.Role) };
            foreach (var call in message.Contents.OfType<FunctionCallContent>())
            {
                if (message.Role != ChatRole.Assistant) throw new ArgumentException($"A FunctionCallContent in a {message.Role} message: only assistant messages call functions.", nameof(messages));
                proto.ToolCalls.Add(new ToolCall { Id = call.CallId, Name = call.Name, Arguments = JsonSerializer.Serialize(call.Arguments ?? new Dictionary<string, object?>(), CompactJson) });
            }
            var text = TextOf(message);
            // An assistant message that only calls functions has no content (not empty content).
            if (proto.ToolCalls.Count == 0 || text.Length > 0) proto.Content = text;
            request.Messages.Add(proto);
        }
        if (request.Messages.Count == 0) throw new ArgumentException("At least one message is needed.", nameof(messages));
    }

    /// <summary>Each FunctionResultContent of a tool message as a chat.v1 tool message naming its call.</summary>
    private static void AddToolResults(Google.Protobuf.Collections.RepeatedField<ProtoChatMessage> target, AiChatMessage message)
    {
        foreach (var content in message.Contents)
        {
            if (content is UsageContent) continue;
            if (content is not FunctionResultContent result)
                throw new NotSupportedException($"{content.GetType().Name} in a tool message: tool messages carry FunctionResultContent.");
            var text = result.Result switch
            {
                null => "",
                string s => s,
                var other => JsonSerializer.Serialize(other, CompactJson),
            };
            target.Add(new ProtoChatMessage { Role = "tool", ToolCallId = result.CallId, Content = text });
        }
    }

    /// <summary>Function declarations, the tool mode and the response format.</summary>
    private static void MapToolsAndFormat(ChatRequest request, ChatOptions options)
    {
        foreach (var tool in options.Tools ?? [])
        {
            if (tool is not AIFunctionDeclaration function)
                throw new NotSupportedException($"ChatOptions.Tools: {tool.GetType().Name} '{tool.Name}' is not a function; the ChatServices Chat API calls functions only.");
            request.Tools.Add(new Tool { Name = function.Name, Description = function.Description, Parameters = function.JsonSchema.GetRawText() });
        }
        switch (options.ToolMode)
        {
            case null or AutoChatToolMode:
                break;
            case NoneChatToolMode:
                request.ToolChoice = new ToolChoice { Mode = ToolChoice.Types.Mode.None };
                break;
            case RequiredChatToolMode { RequiredFunctionName: { } name }:
                request.ToolChoice = new ToolChoice { Mode = ToolChoice.Types.Mode.Function, FunctionName = name };
                break;
            case RequiredChatToolMode:
                request.ToolChoice = new ToolChoice { Mode = ToolChoice.Types.Mode.Required };
                break;
        }
        if (options.AllowMultipleToolCalls is bool parallel) request.ParallelToolCalls = parallel;

        switch (options.ResponseFormat)
        {
            case null or ChatResponseFormatText:
                break;
            case ChatResponseFormatJson { Schema: { } schema }:
                request.Settings.Constraint = new Constraint { JsonSchema = schema.GetRawText() };
                break;
            case ChatResponseFormatJson:
                request.Settings.Constraint = new Constraint { JsonObject = new JsonObjectConstraint() };
                break;
            default:
                throw new NotSupportedException($"ChatOptions.ResponseFormat: {options.ResponseFormat.GetType().Name} is not a format the service knows.");
        }
    }

    private static void MapSettings(GenerationSettings settings, ChatOptions options)
    {
        if (options.Reasoning is not null)
            throw new NotSupportedException("ChatOptions.Reasoning: the ChatServices Chat API has no reasoning settings.");
        if (options.AllowBackgroundResponses == true || options.ContinuationToken is not null)
            throw new NotSupportedException("ChatOptions.AllowBackgroundResponses / ContinuationToken: the ChatServices Chat API has no background responses.");

        // Fields a RawRepresentationFactory's request already set win over ChatOptions, as IChatClient specifies.
        if (options.Temperature is { } temperature && !settings.HasTemperature) settings.Temperature = temperature;
        if (options.TopP is { } topP && settings.TopP == 0) settings.TopP = topP;
        if (options.TopK is { } topK && settings.TopK == 0) settings.TopK = topK;
        if (options.MaxOutputTokens is { } maxTokens && settings.MaxTokens == 0)
            settings.MaxTokens = maxTokens > 0 ? maxTokens : throw new ArgumentException($"ChatOptions.MaxOutputTokens is {maxTokens}; it must be positive.", nameof(options));
        if (options.FrequencyPenalty is { } frequency && settings.FrequencyPenalty == 0) settings.FrequencyPenalty = frequency;
        if (options.PresencePenalty is { } presence && settings.PresencePenalty == 0) settings.PresencePenalty = presence;
        if (options.Seed is { } seed && !settings.HasSeed)
            settings.Seed = seed >= 0 ? (ulong)seed : throw new ArgumentException($"ChatOptions.Seed is {seed}; the service takes seeds from 0 up.", nameof(options));
        if (options.StopSequences is { Count: > 0 } stops && settings.Stop.Count == 0) settings.Stop.AddRange(stops);

        if (options.AdditionalProperties is not { Count: > 0 } additional) return;
        foreach (var (key, value) in additional)
        {
            switch (key)
            {
                case MinP:
                    if (settings.MinP == 0) settings.MinP = ToFloat(value, key);
                    break;
                case RepetitionPenalty:
                    if (settings.RepetitionPenalty == 0) settings.RepetitionPenalty = ToFloat(value, key);
                    break;
                case Regenerate:
                    break; // mapped with the messages
                default:
                    throw new ArgumentException(
                        $"ChatOptions.AdditionalProperties[\"{key}\"] is not a ChatServices chat setting; supported: {MinP}, {RepetitionPenalty}, {Regenerate}.", nameof(options));
            }
        }
    }

    private static string RoleOf(ChatRole role)
    {
        if (role == ChatRole.System) return "system";
        if (role == ChatRole.User) return "user";
        if (role == ChatRole.Assistant) return "assistant";
        throw new ArgumentException($"Message role '{role}' is not one the service takes (system, user, assistant, tool).", "messages");
    }

    /// <summary>The message's text. Usage reports carried over from earlier responses are not content and are skipped.</summary>
    private static string TextOf(AiChatMessage message)
    {
        if (message.Contents.Count == 1 && message.Contents[0] is TextContent only) return only.Text;
        var text = new StringBuilder();
        foreach (var content in message.Contents)
        {
            switch (content)
            {
                case TextContent t:
                    text.Append(t.Text);
                    break;
                case UsageContent or FunctionCallContent:
                    break; // calls are mapped as the message's tool calls
                case FunctionResultContent:
                    throw new NotSupportedException($"FunctionResultContent in a {message.Role} message: function results go in tool messages.");
                default:
                    throw new NotSupportedException($"{content.GetType().Name} in a {message.Role} message: the ChatServices Chat API takes text only.");
            }
        }
        return text.ToString();
    }

    private static float ToFloat(object? value, string key) => value switch
    {
        float f => f,
        double d => (float)d,
        int or long or decimal => Convert.ToSingle(value, CultureInfo.InvariantCulture),
        JsonElement { ValueKind: JsonValueKind.Number } json => json.GetSingle(),
        _ => throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{key}\"] must be a number, not {value?.GetType().Name ?? "null"}.", "options"),
    };

    private static bool ToBool(object? value, string key) => value switch
    {
        bool b => b,
        JsonElement { ValueKind: JsonValueKind.True } => true,
        JsonElement { ValueKind: JsonValueKind.False } => false,
        _ => throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{key}\"] must be true or false, not {value?.GetType().Name ?? "null"}.", "options"),
    };
}
