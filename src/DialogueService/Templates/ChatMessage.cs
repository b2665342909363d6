using System.Text.Json.Nodes;

namespace ChatServices.DialogueService.Templates;

/// <summary>One part of a multi-part message content; chat templates read <c>type</c> and <c>text</c>.</summary>
public sealed record ChatContentPart(string Type, string? Text = null)
{
    public static ChatContentPart FromText(string text) => new("text", text);
}

/// <summary>
/// A message as chat templates see it: <c>role</c>, <c>content</c> (a string, or a list of parts when
/// <see cref="Parts"/> is set), and, for tool use, <c>tool_calls</c>, <c>tool_call_id</c> and <c>name</c>.
/// <see cref="Extra"/> carries any other field a template reads (for example <c>reasoning_content</c>).
/// Fields that are null are absent from the message (the template sees them as undefined), except
/// <c>content</c>, which is none when neither text nor parts are given.
/// </summary>
public sealed record ChatMessage(string Role, string? Content)
{
    public IReadOnlyList<ChatContentPart>? Parts { get; init; }

    public string? Name { get; init; }

    public string? ToolCallId { get; init; }

    /// <summary>OpenAI-style tool calls: <c>[{"id", "type": "function", "function": {"name", "arguments"}}]</c>.</summary>
    public JsonArray? ToolCalls { get; init; }

    public JsonObject? Extra { get; init; }

    public static ChatMessage System(string content) => new("system", content);

    public static ChatMessage User(string content) => new("user", content);

    public static ChatMessage Assistant(string content) => new("assistant", content);

    internal ObjectValue ToValue()
    {
        var entries = new OrderedDictionary<string, Value>(StringComparer.Ordinal)
        {
            ["role"] = new StringValue(Role),
        };
        if (Parts is not null)
        {
            var parts = new List<Value>(Parts.Count);
            foreach (var part in Parts)
            {
                var fields = new OrderedDictionary<string, Value>(StringComparer.Ordinal) { ["type"] = new StringValue(part.Type) };
                if (part.Text is not null) fields["text"] = new StringValue(part.Text);
                parts.Add(new ObjectValue(fields));
            }
            entries["content"] = new ArrayValue(parts);
        }
        else
        {
            entries["content"] = Content is null ? NullValue.Instance : new StringValue(Content);
        }
        if (Name is not null) entries["name"] = new StringValue(Name);
        if (ToolCallId is not null) entries["tool_call_id"] = new StringValue(ToolCallId);
        if (ToolCalls is not null) entries["tool_calls"] = JsonValues.From(ToolCalls);
        if (Extra is not null)
            foreach (var (key, value) in JsonValues.OrderedEntries(Extra)) entries[key] = JsonValues.From(value);
        return new ObjectValue(entries);
    }
}

/// <summary>Everything a chat template renders from.</summary>
public sealed record ChatTemplateContext
{
    public required IReadOnlyList<ChatMessage> Messages { get; init; }

    /// <summary>Whether to end the prompt with the assistant turn's opening, so the model replies next.</summary>
    public bool AddGenerationPrompt { get; init; }

    public string? BosToken { get; init; }

    public string? EosToken { get; init; }

    /// <summary>Other special tokens from tokenizer_config.json, exposed under their own names (unk_token, pad_token, ...).</summary>
    public IReadOnlyDictionary<string, string>? SpecialTokens { get; init; }

    /// <summary>Tool (function) definitions, exposed as <c>tools</c> when present.</summary>
    public JsonArray? Tools { get; init; }

    /// <summary>Additional variables (for example <c>enable_thinking</c> or <c>date_string</c>).</summary>
    public IReadOnlyDictionary<string, JsonNode?>? Variables { get; init; }

    /// <summary>The clock behind <c>strftime_now</c>; the system clock when null.</summary>
    public TimeProvider? Clock { get; init; }
}

/// <summary>Converts JSON into template values the way JavaScript objects become values in the reference.</summary>
internal static class JsonValues
{
    public static Value From(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return NullValue.Instance;
            case JsonObject obj:
            {
                var entries = new OrderedDictionary<string, Value>(obj.Count, StringComparer.Ordinal);
                foreach (var (key, value) in OrderedEntries(obj)) entries[key] = From(value);
                return new ObjectValue(entries);
            }
            case JsonArray array:
            {
                var items = new List<Value>(array.Count);
                foreach (var item in array) items.Add(From(item));
                return new ArrayValue(items);
            }
            case JsonValue value:
            {
                if (value.TryGetValue<string>(out var s)) return new StringValue(s);
                if (value.TryGetValue<bool>(out var b)) return BooleanValue.Of(b);
                if (value.TryGetValue<double>(out var d))
                    return double.IsFinite(d) && d == Math.Floor(d) ? NumberValue.Integer(d) : NumberValue.Float(d);
                var element = value.GetValue<System.Text.Json.JsonElement>();
                return element.ValueKind switch
                {
                    System.Text.Json.JsonValueKind.String => new StringValue(element.GetString()!),
                    System.Text.Json.JsonValueKind.True => BooleanValue.True,
                    System.Text.Json.JsonValueKind.False => BooleanValue.False,
                    System.Text.Json.JsonValueKind.Number => From(JsonValue.Create(element.GetDouble())),
                    _ => NullValue.Instance,
                };
            }
            default:
                return NullValue.Instance;
        }
    }

    /// <summary>
    /// Object.entries order: keys that are array indices (canonical integers below 2^32 - 1) first in
    /// ascending order, then the other keys in insertion order.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, JsonNode?>> OrderedEntries(JsonObject obj)
    {
        List<(uint Index, KeyValuePair<string, JsonNode?> Entry)>? indices = null;
        foreach (var entry in obj)
            if (IsArrayIndex(entry.Key, out var index)) (indices ??= []).Add((index, entry));
        if (indices is null) return obj;
        indices.Sort((a, b) => a.Index.CompareTo(b.Index));
        return indices.Select(i => i.Entry).Concat(obj.Where(e => !IsArrayIndex(e.Key, out _)));
    }

    private static bool IsArrayIndex(string key, out uint index)
    {
        index = 0;
        if (key.Length == 0 || key.Length > 10 || (key.Length > 1 && key[0] == '0')) return false;
        foreach (var c in key) if (!char.IsAsciiDigit(c)) return false;
        return uint.TryParse(key, out index) && index < uint.MaxValue;
    }
}
