using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using ChatServices.Gateway.OpenAi;
using ChatServices.ServiceDefaults.Identity;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace ChatServices.Gateway.Auth;

/// <summary>
/// Authenticates <c>Authorization: Bearer KEY</c> against the configured keys (<see cref="ApiKeyStore"/>), then the
/// keys in DialogueService's database (<see cref="DialogueKeys"/>). With
/// <c>Gateway:AllowAnonymousOnLoopback</c>, a request from the loopback interface that carries no valid key is
/// served as the anonymous owner (the embedded single-machine default; the OpenAI SDKs always send some key,
/// so any key is accepted there), provided the Host header names loopback as well. Failures answer 401 in
/// OpenAI's error shape.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore keys,
    DialogueKeys databaseKeys,
    IOptions<GatewayOptions> gateway)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    private static readonly object FailureKey = new();

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = ServiceIdentity.BearerCredential(Request);
        var caller = presented is null ? null : keys.Find(presented) ?? await databaseKeys.FindAsync(presented, Context.RequestAborted);

        if (caller is null && gateway.Value.AllowAnonymousOnLoopback && IsLoopback(Context.Connection.RemoteIpAddress) && IsLoopbackHost(Request.Host.Host))
        {
            caller = keys.Anonymous();
        }

        if (caller is null)
        {
            Context.Items[FailureKey] = presented is null ? ApiException.MissingKey() : ApiException.InvalidKey();
            return presented is null ? AuthenticateResult.NoResult() : AuthenticateResult.Fail("invalid API key");
        }

        Context.SetCaller(caller);
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, caller.OwnerId)], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        ApiErrorMiddleware.WriteErrorAsync(Context, Context.Items[FailureKey] as ApiException ?? ApiException.MissingKey());

    private static bool IsLoopback(IPAddress? address) => address is not null && IPAddress.IsLoopback(address);

    // The Host must name loopback too: a web page on a domain that resolves to 127.0.0.1 (DNS rebinding) reaches
    // the gateway from loopback, but says its own name in Host.
    private static bool IsLoopbackHost(string host) =>
        host is "localhost" or "127.0.0.1" or "[::1]" or "::1" || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase);
}
