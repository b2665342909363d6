using System.Text.Json;

namespace ChatServices.Gateway.OpenAi;

/// <summary>
/// What happens to request fields the gateway does not implement: nothing is silently ignored. Fields OpenAI documents
/// as hints that do not change the reply are accepted and not used; documented fields that would change it are a
/// 400 naming them (unless null, or holding the value that changes nothing); any other field is a 400 as well.
/// </summary>
/// <remarks>
/// Accepted hints: <c>metadata</c> and <c>store</c> (OpenAI's own stored completions; this gateway stores
/// nothing for <c>/v1/chat/completions</c>), <c>service_tier</c> (one tier serves every request),
/// <c>prompt_cache_key</c> (prefix caching is automatic), <c>safety_identifier</c> and <c>user</c> (end-user ids
/// for abuse monitoring). In messages, <c>name</c> (a participant's name, which the chat templates do not render)
/// and <c>refusal</c>; any other message field is refused by name as <c>messages[i].field</c>.
/// </remarks>
internal static class RequestFields
{
    public static readonly IReadOnlySet<string> ChatHints = new HashSet<string>(StringComparer.Ordinal)
    {
        "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier",
    };

    public static readonly IReadOnlySet<string> NoHints = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>
    /// Message fields accepted and not used: <c>refusal</c> (a refusal an earlier reply carried; replies of this
    /// gateway never have one).
    /// </summary>
    public static readonly IReadOnlySet<string> MessageHints = new HashSet<string>(StringComparer.Ordinal) { "refusal" };

    // Documented fields not implemented, with why, for the error message.
    private static readonly Dictionary<string, string> Unsupported = new(StringComparer.Ordinal)
    {
        ["logit_bias"] = "token biases are not supported",
        ["audio"] = "this model reads and writes text only",
        ["modalities"] = "this model writes text only",
        ["prediction"] = "predicted outputs are not supported",
        ["reasoning_effort"] = "the served model does not reason in a separate channel",
        ["verbosity"] = "verbosity is not supported",
        ["web_search_options"] = "web search is not available",
        ["functions"] = "the deprecated functions field is not supported; send tools",
        ["function_call"] = "the deprecated function_call field is not supported; send tool_choice",
    };

    /// <summary>
    /// Refuses, naming it, the first field of <paramref name="extra"/> that is neither a hint nor neutral.
    /// <paramref name="at"/> is where the object sits in the body (<c>messages[2].</c>), for the param's name.
    /// </summary>
    public static void Check(Dictionary<string, JsonElement>? extra, IReadOnlySet<string> hints, string at = "")
    {
        if (extra is null) return;
        foreach (var (name, value) in extra)
        {
            if (hints.Contains(name) || value.ValueKind == JsonValueKind.Null || IsNeutral(name, value)) continue;
            var param = at + name;
            if (Unsupported.TryGetValue(name, out var why))
                throw ApiException.InvalidRequest($"'{param}' is not supported: {why}.", param, "unsupported_parameter");
            throw ApiException.InvalidRequest($"Unrecognized request argument supplied: {param}", param, "unknown_parameter");
        }
    }

    /// <summary>Values of unsupported fields that ask for what happens anyway.</summary>
    private static bool IsNeutral(string name, JsonElement value) => name switch
    {
        "logit_bias" => value.ValueKind == JsonValueKind.Object && !value.EnumerateObject().Any(),
        "modalities" => value.ValueKind == JsonValueKind.Array && value.EnumerateArray().All(m => m.ValueKind == JsonValueKind.String && m.GetString() == "text"),
        _ => false,
    };
}
