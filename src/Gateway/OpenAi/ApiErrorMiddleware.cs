using System.Diagnostics.Metrics;
using System.Text.Json;
using ChatServices.ServiceDefaults;

namespace ChatServices.Gateway.OpenAi;

/// <summary>
/// Turns failures below it into OpenAI-shaped errors: <see cref="ApiException"/> as it says, a body over the
/// size limit as 413, a method the route does not serve as 405 (with <c>Allow</c>), any other failure as 500
/// (logged). A request whose client went away is normal: whatever its handler then throws (a cancelled upstream
/// call, a write to a closed connection) is logged at information level with the request id, without a stack
/// trace, and counted in <c>chatservices.http.server.abandoned_requests</c>.
/// </summary>
public sealed class ApiErrorMiddleware(RequestDelegate next, ILogger<ApiErrorMiddleware> logger)
{
    private static readonly Meter Meter = new(Telemetry.SourcePrefix + "Gateway");
    private static readonly Counter<long> Abandoned = Meter.CreateCounter<long>(
        "chatservices.http.server.abandoned_requests", "{request}", "HTTP requests whose client went away before the response was complete.");

    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (Exception e) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client disconnected; there is no one to answer. Disposing the upstream call (below the endpoint)
            // has already cancelled the generation, and DialogueService records the stored reply as cancelled.
            Abandoned.Add(1, new KeyValuePair<string, object?>("http.route", RouteOf(context)));
            logger.LogInformation("Request {RequestId} ({Method} {Path}) ended early: the client went away ({Exception})",
                context.TraceIdentifier, context.Request.Method, context.Request.Path, e.GetType().Name);
            return;
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            var error = e switch
            {
                ApiException api => api,
                BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
                    ApiException.BodyTooLarge(context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize ?? 0),
                BadHttpRequestException bad => ApiException.InvalidRequest(bad.Message),
                _ => null,
            };
            if (error is null)
            {
                logger.LogError(e, "Unhandled failure on {Method} {Path}", context.Request.Method, context.Request.Path);
                error = new ApiException(StatusCodes.Status500InternalServerError, "server_error", "The server had an error while processing your request.");
            }
            await WriteErrorAsync(context, error);
            return;
        }

        // Routing answers a known path with an unserved method by a bare 405: give it a body, keeping its Allow header.
        if (context.Response.StatusCode == StatusCodes.Status405MethodNotAllowed && !context.Response.HasStarted)
        {
            await WriteErrorAsync(context, ApiException.MethodNotAllowed(context.Request.Method, context.Request.Path, context.Response.Headers.Allow.ToString()));
        }
    }

    private static string RouteOf(HttpContext context) =>
        (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";

    public static async Task WriteErrorAsync(HttpContext context, ApiException error)
    {
        var response = context.Response;
        response.Clear();
        response.StatusCode = error.StatusCode;
        response.ContentType = "application/json";
        if (error.RetryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        if (error.Allow is { } allow) response.Headers.Allow = allow;
        await using (var writer = new Utf8JsonWriter(response.BodyWriter, OpenAiJson.WriterOptions))
        {
            error.WriteTo(writer);
        }
        await response.BodyWriter.FlushAsync(context.RequestAborted);
    }
}
