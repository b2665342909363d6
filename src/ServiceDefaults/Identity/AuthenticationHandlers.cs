using System.Net;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ChatServices.ServiceDefaults.Identity;

/// <summary>
/// Authenticates <c>authorization: Bearer csk_…</c> against every registered <see cref="IApiKeyValidator"/>
/// (configuration first). The key itself is never logged or kept; the principal carries the key's id.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    IEnumerable<IApiKeyValidator> validators)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var credential = ServiceIdentity.BearerCredential(Request);
        if (credential is null) return AuthenticateResult.Fail("The authorization metadata must be 'Bearer <API key or JWT>'.");
        if (!ApiKeyFormat.IsApiKey(credential))
            return AuthenticateResult.Fail($"The credential is neither an API key ({ApiKeyFormat.Prefix}…) nor a JWT this service accepts.");
        var hash = ApiKeyFormat.Hash(credential);
        foreach (var validator in validators)
        {
            ApiKeyIdentity? identity;
            try
            {
                identity = await validator.ValidateAsync(hash, Context.RequestAborted);
            }
            catch (Exception e) when (e is not OperationCanceledException || !Context.RequestAborted.IsCancellationRequested)
            {
                // The key store (a database) could not answer: the caller may retry, the key may well be valid.
                Logger.LogWarning("An API key could not be checked: {Source} failed: {Error}", validator.GetType().Name, e.Message);
                return AuthenticateResult.Fail(new KeyStoreUnavailableException(e));
            }
            if (identity is null) continue;
            var principal = ServiceIdentity.CreatePrincipal(identity.Owner, [identity.Role], ServiceIdentity.ApiKeyScheme, identity.KeyId);
            return AuthenticateResult.Success(new AuthenticationTicket(principal, ServiceIdentity.ApiKeyScheme));
        }
        return AuthenticateResult.Fail("The API key is unknown, revoked or expired.");
    }
}

/// <summary>
/// The embedded default: with <c>Identity:AllowAnonymousOnLoopback</c>, a call from the loopback interface that
/// carries no credential acts as <c>Identity:AnonymousOwnerId</c> with roles <c>user</c> and <c>admin</c> — never
/// <c>service</c>, so it cannot act for another owner. Anything else is left unauthenticated.
/// </summary>
public sealed class LoopbackAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    IOptions<IdentityOptions> identity)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var remote = Context.Connection.RemoteIpAddress;
        if (!identity.Value.AllowAnonymousOnLoopback || remote is null || !IPAddress.IsLoopback(remote))
            return Task.FromResult(AuthenticateResult.NoResult());
        var principal = ServiceIdentity.CreatePrincipal(identity.Value.AnonymousOwnerId, [Roles.User, Roles.Admin], ServiceIdentity.LoopbackScheme,
            keyId: "loopback:" + identity.Value.AnonymousOwnerId);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, ServiceIdentity.LoopbackScheme)));
    }
}

/// <summary>A key source failed while checking a credential: the call is answered UNAVAILABLE, not UNAUTHENTICATED.</summary>
public sealed class KeyStoreUnavailableException(Exception inner)
    : Exception("The credential could not be checked: the key store is unavailable. Retry later.", inner);
