using System.Text.Json;

namespace ChatServices.Gateway.OpenAi;

/// <summary>
/// Turns failures below it into OpenAI-shaped errors: <see cref="ApiException"/> as it says, a body over the
/// size limit as 413, any other failure as 500 (logged). A request whose client went away is left alone.
/// </summary>
public sealed class ApiErrorMiddleware(RequestDelegate next, ILogger<ApiErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client disconnected; there is no one to answer.
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
        }
    }

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
        await using (var writer = new Utf8JsonWriter(response.BodyWriter, OpenAiJson.WriterOptions))
        {
            error.WriteTo(writer);
        }
        await response.BodyWriter.FlushAsync(context.RequestAborted);
    }
}
