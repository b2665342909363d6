using System.Text.Json;
using System.Text.RegularExpressions;
using ChatServices.Protos.Chat.V1;
using Google.Protobuf.Collections;

namespace ChatServices.Gateway.OpenAi;

/// <summary>
/// OpenAI's structured-output and tool fields to chat.v1 and back: <c>response_format</c> to a
/// <see cref="Constraint"/>, <c>tools</c> / <c>tool_choice</c> / <c>parallel_tool_calls</c>, tool calls and tool
/// messages in the history, and tool-call deltas to <c>message.tool_calls</c>. Refusals name the field as sent.
/// </summary>
internal static partial class ToolMapping
{
    [GeneratedRegex("^[a-zA-Z0-9_-]{1,64}$")]
    private static partial Regex SchemaName();

    /// <summary>A message of the request; assistant messages may call tools instead of (or besides) writing text.</summary>
    public static ChatMessage Message(ChatMessageBody body, int i)
    {
        // "developer" is the newer name OpenAI gives system instructions.
        var message = new ChatMessage { Role = body.Role == "developer" ? "system" : body.Role! };
        if (body.Content is not null) message.Content = body.Content;
        else if (body.Role != "assistant" || body.ToolCalls is not { Count: > 0 })
            throw ApiException.InvalidRequest($"'messages[{i}].content' is required.", $"messages[{i}].content");

        if (body.ToolCalls is { Count: > 0 })
        {
            if (body.Role != "assistant") throw ApiException.InvalidRequest($"'messages[{i}].tool_calls' is only allowed on assistant messages.", $"messages[{i}].tool_calls");
            for (var j = 0; j < body.ToolCalls.Count; j++)
            {
                var call = body.ToolCalls[j];
                var at = $"messages[{i}].tool_calls[{j}]";
                if (call is null) throw ApiException.InvalidRequest($"'{at}' must be an object.", at);
                if (call.Type != "function") throw ApiException.InvalidRequest($"Invalid value for '{at}.type': '{call.Type}'. Supported: function.", $"{at}.type");
                if (string.IsNullOrEmpty(call.Id)) throw ApiException.InvalidRequest($"'{at}.id' is required.", $"{at}.id");
                if (string.IsNullOrEmpty(call.Function?.Name)) throw ApiException.InvalidRequest($"'{at}.function.name' is required.", $"{at}.function.name");
                message.ToolCalls.Add(new ToolCall { Id = call.Id, Name = call.Function.Name, Arguments = call.Function.Arguments ?? "{}" });
            }
        }
        if (body.Role == "tool")
        {
            if (string.IsNullOrEmpty(body.ToolCallId)) throw ApiException.InvalidRequest($"'messages[{i}].tool_call_id' is required for tool messages.", $"messages[{i}].tool_call_id");
            message.ToolCallId = body.ToolCallId;
        }
        else if (body.ToolCallId is not null)
        {
            throw ApiException.InvalidRequest($"'messages[{i}].tool_call_id' is only allowed on tool messages.", $"messages[{i}].tool_call_id");
        }
        return message;
    }

    /// <summary><c>response_format</c> as a constraint; null for text (or none).</summary>
    public static Constraint? Constraint(ResponseFormatBody? format)
    {
        switch (format?.Type)
        {
            case null when format is null:
            case "text":
                return null;
            case "json_object":
                return new Constraint { JsonObject = new JsonObjectConstraint() };
            case "json_schema":
                var spec = format.JsonSchema ?? throw ApiException.InvalidRequest("'response_format.json_schema' is required when type is 'json_schema'.", "response_format.json_schema");
                if (spec.Name is null || !SchemaName().IsMatch(spec.Name))
                    throw ApiException.InvalidRequest("'response_format.json_schema.name' is required: 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'.", "response_format.json_schema.name");
                if (spec.Schema is not { ValueKind: JsonValueKind.Object } schema)
                    throw ApiException.InvalidRequest("'response_format.json_schema.schema' must be a JSON Schema object.", "response_format.json_schema.schema");
                // Decoding follows the schema whether or not strict is set: strict is always honoured.
                return new Constraint { JsonSchema = schema.GetRawText() };
            default:
                throw ApiException.InvalidRequest($"Invalid value for 'response_format.type': '{format.Type}'. Supported: text, json_object, json_schema.", "response_format.type");
        }
    }

    /// <summary><c>tools</c>, <c>tool_choice</c> and <c>parallel_tool_calls</c>.</summary>
    public static void AddTools(ChatCompletionRequest body, ChatRequest request)
    {
        if (body.Tools is not null)
        {
            for (var i = 0; i < body.Tools.Count; i++)
            {
                var tool = body.Tools[i];
                if (tool is null) throw ApiException.InvalidRequest($"'tools[{i}]' must be an object.", $"tools[{i}]");
                if (tool.Type != "function") throw ApiException.InvalidRequest($"Invalid value for 'tools[{i}].type': '{tool.Type}'. Supported: function.", $"tools[{i}].type");
                var f = tool.Function ?? throw ApiException.InvalidRequest($"'tools[{i}].function' is required.", $"tools[{i}].function");
                if (f.Name is null) throw ApiException.InvalidRequest($"'tools[{i}].function.name' is required.", $"tools[{i}].function.name");
                if (f.Parameters is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null) })
                    throw ApiException.InvalidRequest($"'tools[{i}].function.parameters' must be a JSON Schema object.", $"tools[{i}].function.parameters");
                request.Tools.Add(new Tool
                {
                    Name = f.Name,
                    Description = f.Description ?? "",
                    Parameters = f.Parameters is { ValueKind: JsonValueKind.Object } p ? p.GetRawText() : "",
                    Strict = f.Strict == true,
                });
            }
        }
        if (body.ToolChoice is { ValueKind: not JsonValueKind.Null } choice) request.ToolChoice = ToolChoice(choice);
        if (body.ParallelToolCalls is bool parallel) request.ParallelToolCalls = parallel;
    }

    private static ToolChoice ToolChoice(JsonElement choice)
    {
        if (choice.ValueKind == JsonValueKind.String)
        {
            return choice.GetString() switch
            {
                "auto" => new ToolChoice { Mode = Protos.Chat.V1.ToolChoice.Types.Mode.Auto },
                "none" => new ToolChoice { Mode = Protos.Chat.V1.ToolChoice.Types.Mode.None },
                "required" => new ToolChoice { Mode = Protos.Chat.V1.ToolChoice.Types.Mode.Required },
                var other => throw ApiException.InvalidRequest($"Invalid value for 'tool_choice': '{other}'. Supported: none, auto, required, or {{\"type\": \"function\", \"function\": {{\"name\": …}}}}.", "tool_choice"),
            };
        }
        if (choice.ValueKind == JsonValueKind.Object
            && choice.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "function"
            && choice.TryGetProperty("function", out var function) && function.ValueKind == JsonValueKind.Object
            && function.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String)
        {
            return new ToolChoice { Mode = Protos.Chat.V1.ToolChoice.Types.Mode.Function, FunctionName = name.GetString()! };
        }
        throw ApiException.InvalidRequest("Invalid value for 'tool_choice': expected none, auto, required, or {\"type\": \"function\", \"function\": {\"name\": …}}.", "tool_choice");
    }

    /// <summary>Adds a delta's tool calls to a choice's list (a first delta of a call opens it, later ones add arguments).</summary>
    public static void Collect(RepeatedField<ToolCallDelta> deltas, ref List<ToolCallBody>? calls)
    {
        foreach (var d in deltas)
        {
            calls ??= [];
            if (d.Index == calls.Count) calls.Add(new ToolCallBody { Id = d.Id, Function = new FunctionCallBody { Name = d.Name, Arguments = "" } });
            if ((uint)d.Index < (uint)calls.Count) calls[d.Index].Function!.Arguments += d.Arguments;
        }
    }

    /// <summary>
    /// A streamed tool-call delta as OpenAI streams calls: a call's first chunk carries index, id, type,
    /// function.name and empty arguments; the arguments follow in chunks with the index only.
    /// </summary>
    public static void WriteDeltaChunk(Utf8JsonWriter json, ToolCallDelta call, bool first)
    {
        json.WriteStartObject("delta");
        json.WriteStartArray("tool_calls");
        json.WriteStartObject();
        json.WriteNumber("index", call.Index);
        if (first)
        {
            json.WriteString("id", call.Id);
            json.WriteString("type", "function");
        }
        json.WriteStartObject("function");
        if (first) json.WriteString("name", call.Name);
        json.WriteString("arguments", first ? "" : call.Arguments);
        json.WriteEndObject();
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
    }
}
