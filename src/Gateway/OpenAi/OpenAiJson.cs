using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace ChatServices.Gateway.OpenAi;

/// <summary>Source-generated serialization of the OpenAI shapes (snake_case, nulls written).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(ChatCompletionRequest))]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(CompletionRequest))]
[JsonSerializable(typeof(TextCompletion))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelBody))]
internal sealed partial class OpenAiJsonContext : JsonSerializerContext;

/// <summary>Reading request bodies and writing JSON responses, with errors that name the offending field.</summary>
public static class OpenAiJson
{
    /// <summary>JSON as OpenAI writes it: compact, and non-ASCII text left as UTF-8 rather than \u-escaped.</summary>
    public static readonly JavaScriptEncoder Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;

    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = Encoder, SkipValidation = true };

    internal static readonly OpenAiJsonContext Context = new(new JsonSerializerOptions(OpenAiJsonContext.Default.Options)
    {
        Encoder = Encoder,
    });

    /// <summary>
    /// Reads the request body as <typeparamref name="T"/>. A body that is not JSON, or a field of the wrong
    /// type, is a 400 naming the field (<c>messages[0].content</c>); a body over the size limit is a 413.
    /// </summary>
    public static async Task<T> ReadBodyAsync<T>(HttpRequest request, JsonTypeInfo<T> typeInfo) where T : class
    {
        // JSON only, never a form or text/plain: a cross-site page can send those without a CORS preflight, and on a
        // gateway that serves loopback callers without a key that would let any website act as the local owner.
        if (request.ContentType is not { } contentType || !contentType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(StatusCodes.Status415UnsupportedMediaType, "invalid_request_error",
                $"Unsupported content type '{request.ContentType}': send the body as application/json.", null, "unsupported_content_type");
        }

        // Read whole (Kestrel bounds its size) so that all of it is checked as UTF-8: the JSON reader validates strings
        // it decodes but skips the bytes of an unknown property's name, which would let a mangled key pass as absent.
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        var bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            throw ApiException.InvalidRequest(
                $"The request body is not valid UTF-8 (at byte {InvalidUtf8Offset(bytes)}): send JSON encoded as UTF-8.", null, "invalid_encoding");
        }

        T? body;
        try
        {
            body = JsonSerializer.Deserialize(bytes, typeInfo);
        }
        catch (JsonException e)
        {
            var param = ParamFromPath(e.Path);
            if (param is null) throw ApiException.InvalidRequest("We could not parse the JSON body of your request: it is not valid JSON.");
            var detail = FieldDetail(e);
            if (detail.Length == 0 && ExpectedType(typeInfo, param) is { } expected) detail = $"Expected {expected}.";
            throw ApiException.InvalidRequest($"Invalid type or value for '{param}'. {detail}".TrimEnd(), param);
        }

        return body ?? throw ApiException.InvalidRequest("The request body must be a JSON object.");
    }

    private static int InvalidUtf8Offset(ReadOnlySpan<byte> bytes)
    {
        var offset = 0;
        while (offset < bytes.Length && System.Text.Rune.DecodeFromUtf8(bytes[offset..], out _, out var length) == System.Buffers.OperationStatus.Done)
            offset += length;
        return offset;
    }

    public static Task WriteAsync<T>(HttpResponse response, T value, JsonTypeInfo<T> typeInfo, int statusCode = StatusCodes.Status200OK)
    {
        response.StatusCode = statusCode;
        response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(response.Body, value, typeInfo, response.HttpContext.RequestAborted);
    }

    /// <summary><c>$.messages[0].content</c> → <c>messages[0].content</c>; null for the root or no path.</summary>
    internal static string? ParamFromPath(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$") return null;
        return path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
    }

    /// <summary>What a top-level field holds, in JSON's words ("a number"), from the serializer's own metadata.</summary>
    private static string? ExpectedType(JsonTypeInfo typeInfo, string param)
    {
        foreach (var property in typeInfo.Properties)
        {
            if (property.Name != param) continue;
            var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            return type == typeof(double) || type == typeof(float) ? "a number"
                : type == typeof(int) || type == typeof(long) ? "an integer"
                : type == typeof(bool) ? "a boolean"
                : type == typeof(string) ? "a string"
                : type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>) ? "an array"
                : "an object";
        }
        return null;
    }

    // Messages our own converters raise are meant for the caller; the serializer's own ones name CLR types.
    private static string FieldDetail(JsonException e) =>
        e.Message.StartsWith("Expected", StringComparison.Ordinal) ? e.Message.Split(" Path:")[0] : "";
}

/// <summary><c>stop</c>: a string or an array of strings (null: none).</summary>
internal sealed class StopSequencesConverter : JsonConverter<List<string>?>
{
    public override List<string>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return [reader.GetString()!];
            case JsonTokenType.StartArray:
                var list = new List<string>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.String) throw new JsonException("Expected a string or an array of strings.");
                    list.Add(reader.GetString()!);
                }
                return list;
            default:
                throw new JsonException("Expected a string or an array of strings.");
        }
    }

    public override void Write(Utf8JsonWriter writer, List<string>? value, JsonSerializerOptions options) =>
        throw new NotSupportedException("stop is only read.");
}

/// <summary>
/// A message's <c>content</c>: a string, or an array of content parts. Text parts are joined with a newline;
/// other parts (images, audio, files) are refused because the served model reads text only.
/// </summary>
internal sealed class MessageContentConverter : JsonConverter<string?>
{
    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return reader.GetString();
            case JsonTokenType.StartArray:
                var text = new System.Text.StringBuilder();
                var parts = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("Expected a string or an array of content parts.");
                    string? type = null, partText = null;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                    {
                        var name = reader.GetString();
                        reader.Read();
                        if (name == "type" && reader.TokenType == JsonTokenType.String) type = reader.GetString();
                        else if (name == "text" && reader.TokenType == JsonTokenType.String) partText = reader.GetString();
                        else reader.Skip();
                    }
                    if (type != "text" || partText is null)
                    {
                        throw new JsonException($"Expected content parts of type 'text' (this model reads text only), not '{type}'.");
                    }
                    if (parts++ > 0) text.Append('\n');
                    text.Append(partText);
                }
                return text.ToString();
            default:
                throw new JsonException("Expected a string or an array of content parts.");
        }
    }

    public override void Write(Utf8JsonWriter writer, string? value, JsonSerializerOptions options) => writer.WriteStringValue(value);
}

/// <summary>The legacy <c>prompt</c>: a string or an array with exactly one string (token-id prompts are not supported).</summary>
internal sealed class PromptConverter : JsonConverter<string?>
{
    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return reader.GetString();
            case JsonTokenType.StartArray:
                string? prompt = null;
                var count = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.String) throw new JsonException("Expected a string (token-id prompts are not supported).");
                    prompt = reader.GetString();
                    count++;
                }
                if (count != 1) throw new JsonException("Expected a string or an array of exactly one string (batched prompts are not supported).");
                return prompt;
            default:
                throw new JsonException("Expected a string.");
        }
    }

    public override void Write(Utf8JsonWriter writer, string? value, JsonSerializerOptions options) => writer.WriteStringValue(value);
}
