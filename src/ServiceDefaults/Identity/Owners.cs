using System.Security.Claims;
using Grpc.Core;

namespace ChatServices.ServiceDefaults.Identity;

/// <summary>
/// Whose conversations a call works on. The owner is the authenticated principal; a request's <c>owner_id</c> may
/// name it (or be empty). Only a caller with role <c>service</c> (the Gateway, acting for its end users) may name
/// another owner; for anyone else that is PERMISSION_DENIED.
/// </summary>
public static class Owners
{
    /// <summary>The owner this call acts for, given the <c>owner_id</c> it names.</summary>
    public static string Resolve(ServerCallContext context, string requestedOwnerId) =>
        Resolve(context.GetHttpContext().User, requestedOwnerId);

    public static string Resolve(ClaimsPrincipal caller, string requestedOwnerId)
    {
        var self = caller.Identity is { IsAuthenticated: true, Name: { Length: > 0 } name }
            ? name
            : throw new RpcException(new Status(StatusCode.Unauthenticated, "The call is not authenticated."));
        if (requestedOwnerId.Length == 0 || requestedOwnerId == self) return self;
        if (caller.IsInRole(Roles.Service)) return requestedOwnerId;
        throw new RpcException(new Status(StatusCode.PermissionDenied,
            $"owner_id '{requestedOwnerId}' is not the authenticated caller; only a '{Roles.Service}' credential may act for another owner."));
    }
}
