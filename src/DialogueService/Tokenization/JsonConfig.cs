using System.Text.Json;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>Tolerant readers for the optional fields of tokenizer.json components (absent and null read as the default).</summary>
internal static class JsonConfig
{
    public static string? Type(this JsonElement e) => e.String("type");

    public static string? String(this JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()
            : null;

    public static bool Bool(this JsonElement e, string name, bool defaultValue) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? v.GetBoolean()
            : defaultValue;

    public static int Int(this JsonElement e, string name, int defaultValue) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number
            ? v.GetInt32()
            : defaultValue;

    /// <summary>The named member when present and not null.</summary>
    public static bool Has(this JsonElement e, string name, out JsonElement value)
    {
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null)
            return true;
        value = default;
        return false;
    }

    public static IEnumerable<JsonElement> Array(this JsonElement e, string name) =>
        e.Has(name, out var v) && v.ValueKind == JsonValueKind.Array ? v.EnumerateArray() : [];

    /// <summary>
    /// A special-token setting of tokenizer_config.json: either a plain string or an
    /// <c>{"__type": "AddedToken", "content": ...}</c> object.
    /// </summary>
    public static string? TokenContent(this JsonElement e, string name)
    {
        if (!e.Has(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object => v.String("content"),
            _ => null,
        };
    }
}
