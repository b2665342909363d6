using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ChatServices.DialogueService.Tools;

/// <summary>
/// Finds tool calls in a reply as it streams, per model family (<see cref="ToolCallFamily"/>), and separates them
/// from the reply's text: text is released as soon as it cannot be the start of a call, a call once it is complete.
/// Its markup is never released as text.
/// </summary>
/// <remarks>
/// Hermes: every <c>&lt;tool_call&gt;…&lt;/tool_call&gt;</c> block is a call; text that could still become the opening tag
/// is held back. Llama 3.1: a reply whose first visible character is <c>{</c> is held whole and is a call if it is a
/// JSON object with <c>name</c> and <c>parameters</c> (or <c>arguments</c>). A block that does not parse as a call is
/// released as text, so nothing the model wrote is lost.
/// </remarks>
public sealed class ToolCallParser(ToolCallFamily family)
{
    private const string Open = "<tool_call>";
    private const string Close = "</tool_call>";

    internal static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly StringBuilder _pending = new();
    private readonly List<FunctionCall> _calls = [];
    private bool _inCall;
    private bool _sawText;
    private bool _holdingWhole;

    /// <summary>Every call found so far, in order.</summary>
    public IReadOnlyList<FunctionCall> Calls => _calls;

    /// <summary>Adds released reply text; returns the text that is not (part of) a call, and adds new calls to <paramref name="newCalls"/>.</summary>
    public string Push(string text, List<FunctionCall> newCalls)
    {
        _pending.Append(text);
        if (family == ToolCallFamily.Llama31 && !_sawText)
        {
            var visible = _pending.ToString().TrimStart();
            if (visible.Length == 0) return "";
            _sawText = true;
            _holdingWhole = visible[0] == '{';
        }
        if (_holdingWhole) return "";
        return Scan(newCalls, final: false);
    }

    /// <summary>The end of the reply: what is still held back, as text or as a last call.</summary>
    public string Flush(List<FunctionCall> newCalls)
    {
        if (_holdingWhole)
        {
            var whole = _pending.ToString();
            _pending.Clear();
            if (TryParseCall(whole, "parameters", out var call))
            {
                Add(call, newCalls);
                return "";
            }
            return whole;
        }
        return Scan(newCalls, final: true);
    }

    private string Scan(List<FunctionCall> newCalls, bool final)
    {
        var released = new StringBuilder();
        var buffer = _pending.ToString();
        var at = 0;
        while (true)
        {
            if (!_inCall)
            {
                var open = buffer.IndexOf(Open, at, StringComparison.Ordinal);
                if (open < 0)
                {
                    // Hold back a tail that could still grow into the opening tag.
                    var keep = final ? 0 : PossiblePrefix(buffer.AsSpan(at), Open);
                    released.Append(buffer, at, buffer.Length - at - keep);
                    at = buffer.Length - keep;
                    break;
                }
                released.Append(buffer, at, open - at);
                at = open + Open.Length;
                _inCall = true;
            }
            var close = buffer.IndexOf(Close, at, StringComparison.Ordinal);
            if (close < 0)
            {
                if (final)
                {
                    // Cut before its closing tag (max_tokens): a complete JSON call still counts; anything else is text.
                    var body = buffer[at..];
                    if (TryParseCall(body, "arguments", out var cut)) Add(cut, newCalls);
                    else released.Append(Open).Append(body);
                    at = buffer.Length;
                    _inCall = false;
                }
                break;
            }
            var json = buffer[at..close];
            if (TryParseCall(json, "arguments", out var call)) Add(call, newCalls);
            else released.Append(Open).Append(json).Append(Close);
            at = close + Close.Length;
            _inCall = false;
        }
        _pending.Remove(0, at);
        return released.ToString();
    }

    private void Add(FunctionCall call, List<FunctionCall> newCalls)
    {
        _calls.Add(call);
        newCalls.Add(call);
    }

    /// <summary>The length of the longest end of <paramref name="text"/> that is a start of <paramref name="tag"/>.</summary>
    private static int PossiblePrefix(ReadOnlySpan<char> text, string tag)
    {
        for (var length = Math.Min(tag.Length - 1, text.Length); length > 0; length--)
            if (text[^length..].SequenceEqual(tag.AsSpan(0, length))) return length;
        return 0;
    }

    /// <summary><c>{"name": "f", "arguments": {…}}</c> (or <paramref name="argumentsKey"/>); arguments given as a JSON string are taken as its text.</summary>
    private static bool TryParseCall(string text, string argumentsKey, out FunctionCall call)
    {
        call = null!;
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text.Trim());
        }
        catch (JsonException)
        {
            return false;
        }
        if (node is not JsonObject obj || obj["name"] is not JsonValue name || name.GetValueKind() != JsonValueKind.String) return false;
        var arguments = obj[argumentsKey] ?? obj[argumentsKey == "arguments" ? "parameters" : "arguments"];
        var argumentsText = arguments switch
        {
            null => "{}",
            JsonValue s when s.GetValueKind() == JsonValueKind.String => s.GetValue<string>(),
            _ => arguments.ToJsonString(Compact),
        };
        call = new FunctionCall(FunctionCall.NewId(), name.GetValue<string>(), argumentsText);
        return true;
    }
}
