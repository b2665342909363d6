using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ChatServices.DialogueService.Chat;
using ChatServices.DialogueService.Templates;
using TemplateMessage = ChatServices.DialogueService.Templates.ChatMessage;

namespace ChatServices.DialogueService.Tools;

/// <summary>How a model family writes a tool call, and so how its replies are parsed and forced calls constrained.</summary>
public enum ToolCallFamily
{
    /// <summary>Hermes, Qwen 2.5 / 3 and the fallback prompt: <c>&lt;tool_call&gt;{"name": …, "arguments": …}&lt;/tool_call&gt;</c>,
    /// one block per call.</summary>
    Hermes,

    /// <summary>Llama 3.1 / 3.2: the whole reply is <c>{"name": …, "parameters": …}</c>, optionally after
    /// <c>&lt;|python_tag|&gt;</c>; one call per reply.</summary>
    Llama31,
}

/// <summary>
/// Puts tools and tool turns into the messages a chat template renders. A template that takes <c>tools</c> gets them
/// as Hugging Face passes them (<c>[{"type": "function", "function": {name, description, parameters}}]</c>), and
/// one that renders <c>tool_calls</c> gets assistant calls and <c>tool</c> messages as they are, with the arguments
/// as a JSON object. For any other template (such as the embedded default model's) the fallback is plain text:
/// a system-prompt block describing the functions and the <c>&lt;tool_call&gt;</c> format, assistant calls written in
/// that format, and tool results as a user turn of <c>&lt;tool_response&gt;</c> blocks.
/// </summary>
public static class ToolPrompt
{
    public const string FallbackInstructions =
        "# Tools\n\nYou may call one or more functions to assist with the user query. The functions are described " +
        "below, each with its parameters as a JSON Schema:\n<tools>\n{0}</tools>\n\nTo call a function, reply with a " +
        "JSON object holding its name and arguments inside <tool_call></tool_call> tags, one block per call:\n" +
        "<tool_call>\n{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call>";

    public static bool TakesTools(ChatTemplate template) => template.Source.Contains("tools", StringComparison.Ordinal);

    public static bool TakesToolTurns(ChatTemplate template) => template.Source.Contains("tool_calls", StringComparison.Ordinal);

    /// <summary>Llama 3.1's templates (and later Llama 3 ones) name the tool role "ipython"; every other family, and the
    /// fallback, uses the Hermes format.</summary>
    public static ToolCallFamily FamilyOf(ChatTemplate template) =>
        template.Source.Contains("ipython", StringComparison.Ordinal) || template.Source.Contains("<|python_tag|>", StringComparison.Ordinal)
            ? ToolCallFamily.Llama31
            : ToolCallFamily.Hermes;

    /// <summary>The messages and tools to render for <paramref name="messages"/>, offering <paramref name="tools"/> when given.</summary>
    public static (List<TemplateMessage> Messages, JsonArray? Tools) Build(ChatTemplate template, IReadOnlyList<DialogueMessage> messages, ToolSet? tools)
    {
        var native = TakesToolTurns(template);
        var result = new List<TemplateMessage>(messages.Count + 1);
        // Some templates (Hermes) name the function a tool result comes from: the call's name, found by its id.
        var callNames = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var m in messages)
        {
            if (m.ToolCalls is not null)
                foreach (var call in m.ToolCalls) callNames[call.Id] = call.Name;
            if (native) result.Add(NativeMessage(m) is var message && m.ToolCallId is { } id && callNames.TryGetValue(id, out var name) ? message with { Name = name } : message);
            else AddFallbackMessage(result, m);
        }

        if (tools is not { Offered: true }) return (result, null);
        if (TakesTools(template)) return (result, TemplateTools(tools));

        var block = string.Format(System.Globalization.CultureInfo.InvariantCulture, FallbackInstructions, DescribeFunctions(tools));
        if (result.Count > 0 && result[0].Role == "system") result[0] = result[0] with { Content = result[0].Content + "\n\n" + block };
        else result.Insert(0, TemplateMessage.System(block));
        return (result, null);
    }

    private static JsonArray TemplateTools(ToolSet tools)
    {
        var array = new JsonArray();
        foreach (var f in tools.Functions) array.Add(FunctionJson(f));
        return array;
    }

    private static JsonObject FunctionJson(FunctionTool f) => new()
    {
        ["type"] = "function",
        ["function"] = new JsonObject
        {
            ["name"] = f.Name,
            ["description"] = f.Description,
            ["parameters"] = f.Parameters.DeepClone(),
        },
    };

    private static string DescribeFunctions(ToolSet tools)
    {
        var text = new StringBuilder();
        foreach (var f in tools.Functions) text.Append(FunctionJson(f).ToJsonString(ToolCallParser.Compact)).Append('\n');
        return text.ToString();
    }

    private static TemplateMessage NativeMessage(DialogueMessage m)
    {
        var message = new TemplateMessage(m.Role, m.Content);
        if (m.ToolCallId is not null) message = message with { ToolCallId = m.ToolCallId };
        if (m.ToolCalls is { Count: > 0 } calls)
        {
            var array = new JsonArray();
            foreach (var call in calls)
            {
                array.Add(new JsonObject
                {
                    ["id"] = call.Id,
                    ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = ArgumentsNode(call.Arguments) },
                });
            }
            message = message with { ToolCalls = array };
        }
        return message;
    }

    /// <summary>Templates write arguments with <c>tojson</c>, so they get an object (text the model got wrong stays text).</summary>
    private static JsonNode? ArgumentsNode(string arguments)
    {
        try
        {
            return JsonNode.Parse(arguments);
        }
        catch (JsonException)
        {
            return JsonValue.Create(arguments);
        }
    }

    private static void AddFallbackMessage(List<TemplateMessage> result, DialogueMessage m)
    {
        if (m.Role == "tool")
        {
            var block = $"<tool_response>\n{m.Content}\n</tool_response>";
            // Results of one reply's calls are one user turn, so templates that need alternating turns still render.
            if (result.Count > 0 && result[^1].Role == "user" && result[^1].Content!.StartsWith("<tool_response>", StringComparison.Ordinal))
                result[^1] = result[^1] with { Content = result[^1].Content + "\n" + block };
            else result.Add(TemplateMessage.User(block));
            return;
        }
        if (m.ToolCalls is { Count: > 0 } calls)
        {
            var text = new StringBuilder(m.Content);
            foreach (var call in calls)
            {
                if (text.Length > 0) text.Append('\n');
                text.Append("<tool_call>\n")
                    .Append(new JsonObject { ["name"] = call.Name, ["arguments"] = ArgumentsNode(call.Arguments) }.ToJsonString(ToolCallParser.Compact))
                    .Append("\n</tool_call>");
            }
            result.Add(TemplateMessage.Assistant(text.ToString()));
            return;
        }
        result.Add(new TemplateMessage(m.Role, m.Content));
    }
}
