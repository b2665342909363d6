using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Infrastructure;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Http;

namespace ChatServices.ServiceDefaults.Identity;

/// <summary>
/// Answers a refused gRPC call with a gRPC status rather than a bare HTTP 401/403: UNAUTHENTICATED when the call
/// has no valid credential (the message says why), UNAVAILABLE when a key store could not check it, PERMISSION_DENIED
/// when the caller's role is not admitted.
/// Other requests get ASP.NET Core's usual challenge or forbid.
/// </summary>
public sealed class GrpcAuthorizationResultHandler : IAuthorizationMiddlewareResultHandler
{
    private const int Unauthenticated = 16, PermissionDenied = 7, Unavailable = 14;
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Succeeded || context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) != true)
        {
            await _default.HandleAsync(next, context, policy, authorizeResult);
            return;
        }

        var (status, message) = authorizeResult.Challenged
            ? await ChallengeAsync(context)
            : (PermissionDenied, ForbiddenMessage(context, policy));
        // A trailers-only response: HTTP 200 whose headers carry the status, as gRPC servers answer such calls.
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["grpc-status"] = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.Headers["grpc-message"] = Uri.EscapeDataString(message);
    }

    private static async Task<(int Status, string Message)> ChallengeAsync(HttpContext context)
    {
        // The handlers keep their result for the request: this asks again without validating again.
        var failure = (await context.AuthenticateAsync()).Failure;
        return failure switch
        {
            KeyStoreUnavailableException unavailable => (Unavailable, unavailable.Message),
            not null => (Unauthenticated, "The credential was not accepted: " + failure.Message),
            null => (Unauthenticated, "The call carries no credential: send 'authorization: Bearer <API key or JWT>' metadata."),
        };
    }

    private static string ForbiddenMessage(HttpContext context, AuthorizationPolicy policy)
    {
        var roles = policy.Requirements.OfType<RolesAuthorizationRequirement>().SelectMany(r => r.AllowedRoles);
        return $"'{context.User.Identity?.Name}' holds no role this call admits ({string.Join(", ", roles)}).";
    }
}
