using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ChatServices.Protos.Chat.V1;
using Grpc.Core;

namespace ChatServices.DialogueService.Tools;

/// <summary>A call of a function: as the model wrote it (parsed), or as a client sends it back in the history.</summary>
/// <param name="Arguments">The arguments' JSON text (an object, unless a model under tool_choice auto erred).</param>
public sealed record FunctionCall(string Id, string Name, string Arguments)
{
    private const string IdAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    /// <summary>A new call id: "call_" and 24 random letters and digits, as OpenAI's look.</summary>
    public static string NewId() => "call_" + RandomNumberGenerator.GetString(IdAlphabet, 24);

    public ToolCall ToProto() => new() { Id = Id, Name = Name, Arguments = Arguments };

    public static FunctionCall FromProto(ToolCall call) => new(call.Id, call.Name, call.Arguments);
}

/// <summary>A function the model may call, with its parameters schema parsed.</summary>
public sealed record FunctionTool(string Name, string Description, JsonObject Parameters);

/// <summary>
/// The tools of one chat request, validated: which functions exist, whether the model must, may or must not call
/// them (<see cref="ToolChoice.Types.Mode"/>), and whether one reply may hold several calls.
/// </summary>
public sealed partial class ToolSet
{
    public const int MaxTools = 128;
    public const int MaxDescriptionLength = 4096;
    public const int MaxParametersLength = 64 * 1024;

    private ToolSet(IReadOnlyList<FunctionTool> tools, ToolChoice.Types.Mode mode, string? forced, bool parallel)
    {
        Functions = tools;
        Mode = mode;
        ForcedFunction = forced;
        ParallelCalls = parallel;
    }

    public IReadOnlyList<FunctionTool> Functions { get; }
    public ToolChoice.Types.Mode Mode { get; }

    /// <summary>With <see cref="ToolChoice.Types.Mode.Function"/>: the function the model must call.</summary>
    public string? ForcedFunction { get; }

    public bool ParallelCalls { get; }

    /// <summary>Whether the tools are in the prompt and the reply is parsed for calls.</summary>
    public bool Offered => Mode != ToolChoice.Types.Mode.None;

    /// <summary>Whether decoding is constrained to the call format (REQUIRED or FUNCTION).</summary>
    public bool Forced => Mode is ToolChoice.Types.Mode.Required or ToolChoice.Types.Mode.Function;

    /// <summary>The functions a forced reply may call: the named one, or all.</summary>
    public IEnumerable<FunctionTool> Callable => ForcedFunction is null ? Functions : Functions.Where(f => f.Name == ForcedFunction);

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,64}$")]
    private static partial Regex FunctionName();

    /// <summary>
    /// The request's tools, or null when it has none (and asks for no tool choice). Refuses, naming the field: a bad
    /// name, a duplicate, parameters that are not a JSON Schema object, text holding a control-token string (it would
    /// become a control token in the prompt), and a tool choice that names no tool.
    /// </summary>
    public static ToolSet? FromRequest(ChatRequest request, IReadOnlyList<string> controlTokens)
    {
        var choice = request.ToolChoice ?? new ToolChoice();
        if (request.Tools.Count == 0)
        {
            if (choice.Mode is ToolChoice.Types.Mode.Required or ToolChoice.Types.Mode.Function)
                throw Invalid("tool_choice", "tool_choice requires tools.");
            return null;
        }
        if (request.Tools.Count > MaxTools) throw Invalid("tools", $"tools has {request.Tools.Count} entries; at most {MaxTools} are accepted.");

        var tools = new List<FunctionTool>(request.Tools.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < request.Tools.Count; i++)
        {
            var tool = request.Tools[i];
            if (!FunctionName().IsMatch(tool.Name))
                throw Invalid($"tools[{i}].name", $"'{tool.Name}' is not a valid function name: 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'.");
            if (!names.Add(tool.Name)) throw Invalid($"tools[{i}].name", $"the function '{tool.Name}' is defined twice.");
            if (tool.Description.Length > MaxDescriptionLength)
                throw Invalid($"tools[{i}].description", $"at most {MaxDescriptionLength} characters are accepted.");
            if (tool.Parameters.Length > MaxParametersLength)
                throw Invalid($"tools[{i}].parameters", $"at most {MaxParametersLength} characters are accepted.");
            RefuseControlTokens($"tools[{i}].description", tool.Description, controlTokens);
            RefuseControlTokens($"tools[{i}].parameters", tool.Parameters, controlTokens);
            tools.Add(new FunctionTool(tool.Name, tool.Description, ParseParameters(tool.Parameters, $"tools[{i}].parameters")));
        }

        string? forced = null;
        if (choice.Mode == ToolChoice.Types.Mode.Function)
        {
            forced = choice.FunctionName;
            if (!names.Contains(forced)) throw Invalid("tool_choice.function_name", $"'{forced}' is not one of the request's tools.");
        }
        else if (choice.FunctionName.Length > 0)
        {
            throw Invalid("tool_choice.function_name", "function_name is only allowed with MODE_FUNCTION.");
        }
        return new ToolSet(tools, choice.Mode, forced, !request.HasParallelToolCalls || request.ParallelToolCalls);
    }

    private static JsonObject ParseParameters(string text, string field)
    {
        if (text.Length == 0) return new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() };
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text);
        }
        catch (JsonException e)
        {
            throw Invalid(field, $"not valid JSON: {e.Message}");
        }
        if (node is not JsonObject schema) throw Invalid(field, "must be a JSON Schema object.");
        if (schema["type"] is JsonValue type && type.GetValueKind() == JsonValueKind.String && type.GetValue<string>() != "object")
            throw Invalid(field, $"the parameters schema must have type 'object', not '{type.GetValue<string>()}'.");
        return schema;
    }

    /// <summary>Text that ends up in the prompt verbatim must not hold a control-token string.</summary>
    public static void RefuseControlTokens(string field, string text, IReadOnlyList<string> controlTokens)
    {
        foreach (var token in controlTokens)
            if (text.Contains(token, StringComparison.Ordinal))
                throw Invalid(field, $"contains the control-token string '{token}', which cannot be sent to the model.");
    }

    internal static RpcException Invalid(string field, string message) =>
        new(new Status(StatusCode.InvalidArgument, $"{field}: {message}"));
}
