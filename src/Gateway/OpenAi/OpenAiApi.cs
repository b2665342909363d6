using ChatServices.Gateway.Limits;

namespace ChatServices.Gateway.OpenAi;

/// <summary>The OpenAI-compatible HTTP API, version 1: every route in one place.</summary>
public static class OpenAiApi
{
    public static RouteGroupBuilder MapOpenAiApiV1(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").RequireAuthorization().RequireRateLimiting(RequestLimits.PolicyName);

        v1.MapPost("/chat/completions", ChatCompletionsApi.CreateChatCompletion);
        v1.MapPost("/completions", CompletionsApi.CreateCompletion);
        v1.MapGet("/models", ModelsApi.ListModels);
        v1.MapGet("/models/{**id}", ModelsApi.GetModel); // model ids may hold slashes (org/name)

        // Anything else under /v1 is an unknown URL, answered in OpenAI's shape rather than an empty 404.
        v1.MapFallback(() => Task.FromException(ApiException.NotFound("Unknown request URL.", "unknown_url")));
        return v1;
    }
}
