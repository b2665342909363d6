using ChatServices.Gateway.Auth;
using ChatServices.Gateway.Limits;
using ChatServices.Gateway.OpenAi;
using ChatServices.Gateway.Upstream;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults.Identity;
using Microsoft.AspNetCore.Mvc;

namespace ChatServices.Gateway.Accounting;

/// <summary>
/// <c>GET /admin/usage</c>: chat requests and prompt / completion tokens per key and UTC day, read from
/// DialogueService (chat.v1.Admin/GetUsage), for callers whose key has role <c>admin</c>.
/// Query: <c>key_id</c>, <c>owner_id</c>, <c>from</c> and <c>to</c> (YYYY-MM-DD, inclusive; default the last 30 days).
/// </summary>
public static class UsageApi
{
    public static IEndpointRouteBuilder MapUsageApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/admin/usage", GetUsage).RequireAuthorization().RequireRateLimiting(RequestLimits.PolicyName);
        return app;
    }

    public static async Task<IResult> GetUsage(HttpContext http, DialogueUpstream upstream,
        [FromQuery(Name = "key_id")] string? keyId, [FromQuery(Name = "owner_id")] string? ownerId,
        [FromQuery(Name = "from")] string? from, [FromQuery(Name = "to")] string? to)
    {
        if (http.GetCaller().Role != Roles.Admin)
            throw new ApiException(StatusCodes.Status403Forbidden, "permission_error", "Usage is for keys with role admin.", null, "forbidden");
        var usage = await upstream.GetUsageAsync(new GetUsageRequest
        {
            KeyId = keyId ?? "", OwnerId = ownerId ?? "", FromDay = from ?? "", ToDay = to ?? "",
        }, http.RequestAborted);
        return Results.Json(new
        {
            @object = "list",
            data = usage.Usage.Select(u => new
            {
                key_id = u.KeyId, owner_id = u.OwnerId, day = u.Day, requests = u.Requests,
                prompt_tokens = u.PromptTokens, completion_tokens = u.CompletionTokens,
            }),
        });
    }
}
