using System.Text.Json;

namespace ChatServices.Gateway.OpenAi;

/// <summary>
/// A request that ends with an error in OpenAI's shape: <c>{"error":{"message","type","param","code"}}</c> and
/// an HTTP status. Thrown anywhere below an endpoint; <see cref="ApiErrorMiddleware"/> writes it.
/// </summary>
public sealed class ApiException(int statusCode, string type, string message, string? param = null, string? code = null)
    : Exception(message)
{
    public int StatusCode { get; } = statusCode;

    public string Type { get; } = type;

    public string? Param { get; } = param;

    public string? Code { get; } = code;

    /// <summary>Seconds the caller should wait before retrying (429, 503); sent as <c>Retry-After</c>.</summary>
    public int? RetryAfterSeconds { get; init; }

    /// <summary>The methods the URL does serve (405); sent as <c>Allow</c>.</summary>
    public string? Allow { get; init; }

    /// <summary>The upstream service could not be reached at all (no connection): nothing was sent to it.</summary>
    public bool UpstreamUnreachable { get; init; }

    public static ApiException InvalidRequest(string message, string? param = null, string? code = null) =>
        new(StatusCodes.Status400BadRequest, "invalid_request_error", message, param, code);

    public static ApiException MissingKey() =>
        new(StatusCodes.Status401Unauthorized, "invalid_request_error",
            "You didn't provide an API key. Provide it in the Authorization header as 'Bearer YOUR_KEY'.", null, "missing_api_key");

    public static ApiException InvalidKey() =>
        new(StatusCodes.Status401Unauthorized, "invalid_request_error", "Incorrect API key provided.", null, "invalid_api_key");

    public static ApiException ModelNotFound(string model) =>
        new(StatusCodes.Status404NotFound, "invalid_request_error",
            $"The model '{model}' does not exist or you do not have access to it.", "model", "model_not_found");

    public static ApiException NotFound(string message, string? code = "not_found") =>
        new(StatusCodes.Status404NotFound, "invalid_request_error", message, null, code);

    public static ApiException MethodNotAllowed(string method, string path, string allowed) =>
        new(StatusCodes.Status405MethodNotAllowed, "invalid_request_error",
            $"{method} is not supported on {path}; use {(allowed.Length == 0 ? "another method" : allowed)}.", null, "method_not_allowed") { Allow = allowed };

    public static ApiException BodyTooLarge(long limit) =>
        new(StatusCodes.Status413RequestEntityTooLarge, "invalid_request_error",
            $"The request body is larger than the limit of {limit} bytes.", null, "request_too_large");

    public static ApiException RateLimited(string type, string message, int retryAfterSeconds) =>
        new(StatusCodes.Status429TooManyRequests, type, message, null, "rate_limit_exceeded") { RetryAfterSeconds = retryAfterSeconds };

    public static ApiException Unavailable(string message, bool unreachable = false) =>
        new(StatusCodes.Status503ServiceUnavailable, "server_error", message, null, "upstream_unavailable") { RetryAfterSeconds = 1, UpstreamUnreachable = unreachable };

    /// <summary>Writes <c>{"error":{...}}</c> (the object that follows <c>"error":</c> in a body or an SSE event).</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteStartObject("error");
        writer.WriteString("message", Message);
        writer.WriteString("type", Type);
        if (Param is null) writer.WriteNull("param"); else writer.WriteString("param", Param);
        if (Code is null) writer.WriteNull("code"); else writer.WriteString("code", Code);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }
}
