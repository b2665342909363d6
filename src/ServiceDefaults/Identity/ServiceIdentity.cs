using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace ChatServices.ServiceDefaults.Identity;

/// <summary>
/// Authentication and authorization for the gRPC services, on ASP.NET Core's: a caller presents
/// <c>authorization: Bearer CREDENTIAL</c> metadata, where the credential is an API key (<c>csk_…</c>, checked
/// against every <see cref="IApiKeyValidator"/>) or a JWT (anything else with two dots, validated by JwtBearer when
/// <c>Identity:Jwt</c> is configured). A call with no credential is served only from loopback, and only with
/// <c>Identity:AllowAnonymousOnLoopback</c>, as <c>Identity:AnonymousOwnerId</c>.
/// </summary>
/// <remarks>
/// Services put <c>[Authorize(Policy = …)]</c> on their service classes; health, reflection and the default HTTP
/// endpoints carry none and stay reachable by probes. A refused gRPC call ends with UNAUTHENTICATED (no or bad
/// credential) or PERMISSION_DENIED (a role the service does not admit), see <see cref="GrpcAuthorizationResultHandler"/>.
/// The principal's name is the owner (<see cref="Owners"/>), its roles are <see cref="Roles"/>.
/// </remarks>
public static class ServiceIdentity
{
    /// <summary>The default scheme: picks one of the three below by what the call carries.</summary>
    public const string BearerScheme = "Bearer";
    public const string ApiKeyScheme = "ApiKey";
    public const string JwtScheme = "Jwt";
    public const string LoopbackScheme = "Loopback";

    /// <summary>The claim types of principals made here (API keys, loopback).</summary>
    public const string OwnerClaim = "sub";
    public const string RoleClaim = "role";
    public const string KeyIdClaim = "key_id";

    /// <summary>Conversations, chat and tokenizer: any known role.</summary>
    public const string ChatPolicy = "chat";

    /// <summary>Keys and usage: <c>admin</c> only.</summary>
    public const string AdminPolicy = "admin";

    /// <summary>Validating another caller's key (the Gateway): <c>service</c> or <c>admin</c>.</summary>
    public const string KeyValidationPolicy = "key-validation";

    public static TBuilder AddServiceIdentity<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var section = builder.Configuration.GetSection(IdentityOptions.SectionName);
        var services = builder.Services;
        services.Configure<IdentityOptions>(section);
        var options = section.Get<IdentityOptions>() ?? new IdentityOptions();

        services.TryAddSingleton<ConfiguredApiKeys>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IApiKeyValidator, ConfiguredApiKeys>(sp => sp.GetRequiredService<ConfiguredApiKeys>()));

        var jwt = options.Jwt.IsConfigured;
        var authentication = services.AddAuthentication(BearerScheme)
            .AddPolicyScheme(BearerScheme, null, o => o.ForwardDefaultSelector = context => SelectScheme(context.Request, jwt))
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyScheme, null)
            .AddScheme<AuthenticationSchemeOptions, LoopbackAuthenticationHandler>(LoopbackScheme, null);
        if (jwt) authentication.AddJwtBearer(JwtScheme, o => ConfigureJwt(o, options.Jwt));

        services.AddAuthorizationBuilder()
            .AddPolicy(ChatPolicy, p => p.RequireAuthenticatedUser().RequireRole(Roles.All))
            .AddPolicy(AdminPolicy, p => p.RequireAuthenticatedUser().RequireRole(Roles.Admin))
            .AddPolicy(KeyValidationPolicy, p => p.RequireAuthenticatedUser().RequireRole(Roles.Service, Roles.Admin));
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, GrpcAuthorizationResultHandler>();
        services.AddHostedService<IdentityAnnouncement>();
        return builder;
    }

    /// <summary>A principal of this service's own making (API key or loopback).</summary>
    public static ClaimsPrincipal CreatePrincipal(string owner, IEnumerable<string> roles, string authenticationType, string? keyId = null)
    {
        var claims = new List<Claim> { new(OwnerClaim, owner) };
        claims.AddRange(roles.Select(r => new Claim(RoleClaim, r)));
        if (keyId is not null) claims.Add(new Claim(KeyIdClaim, keyId));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, authenticationType, OwnerClaim, RoleClaim));
    }

    /// <summary>The bearer credential of a request, or null when it carries none (or another scheme).</summary>
    public static string? BearerCredential(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string prefix = "Bearer ";
        if (!header.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) return null;
        var token = header.AsSpan(prefix.Length).Trim();
        return token.IsEmpty ? null : token.ToString();
    }

    private static string SelectScheme(HttpRequest request, bool jwt)
    {
        if (!request.Headers.ContainsKey("Authorization")) return LoopbackScheme;
        var credential = BearerCredential(request);
        // Anything that is neither goes to the API key handler, which refuses it with a clear reason.
        return credential is not null && jwt && !ApiKeyFormat.IsApiKey(credential) && ApiKeyFormat.LooksLikeJwt(credential)
            ? JwtScheme
            : ApiKeyScheme;
    }

    private static void ConfigureJwt(JwtBearerOptions o, JwtOptions jwt)
    {
        if (jwt.Audiences.Length == 0)
            throw new OptionsValidationException(IdentityOptions.SectionName, typeof(IdentityOptions), ["Identity:Jwt:Audiences must name at least one audience."]);
        if (jwt.Issuers.Length == 0 && string.IsNullOrWhiteSpace(jwt.Authority))
            throw new OptionsValidationException(IdentityOptions.SectionName, typeof(IdentityOptions), ["Identity:Jwt:Issuers is required without an Authority."]);

        o.Authority = string.IsNullOrWhiteSpace(jwt.Authority) ? null : jwt.Authority;
        o.RequireHttpsMetadata = jwt.RequireHttpsMetadata;
        o.MapInboundClaims = false; // claim names as the token has them: sub, role
        o.TokenValidationParameters = new TokenValidationParameters
        {
            ValidateIssuer = true,
            ValidIssuers = jwt.Issuers.Length > 0 ? jwt.Issuers : null,
            ValidateAudience = true,
            ValidAudiences = jwt.Audiences,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            IssuerSigningKeys = jwt.SigningKeys.Length > 0 ? jwt.SigningKeys.Select(ParseSigningKey).ToArray() : null,
            ClockSkew = jwt.ClockSkew,
            NameClaimType = jwt.OwnerClaim,
            RoleClaimType = jwt.RoleClaim,
        };
        o.Events = new JwtBearerEvents
        {
            OnTokenValidated = context =>
            {
                var identity = context.Principal?.Identity as ClaimsIdentity;
                if (string.IsNullOrEmpty(identity?.Name))
                {
                    context.Fail($"The token has no '{jwt.OwnerClaim}' claim naming its owner.");
                }
                else
                {
                    if (!identity.HasClaim(c => c.Type == jwt.RoleClaim)) identity.AddClaim(new Claim(jwt.RoleClaim, jwt.DefaultRole));
                    identity.AddClaim(new Claim(KeyIdClaim, "jwt:" + identity.Name));
                }
                return Task.CompletedTask;
            },
        };
    }

    private static SecurityKey ParseSigningKey(string key)
    {
        key = key.Trim();
        if (!key.StartsWith("-----BEGIN", StringComparison.Ordinal)) return new SymmetricSecurityKey(Convert.FromBase64String(key));
        try
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(key);
            return new RsaSecurityKey(rsa);
        }
        catch (ArgumentException)
        {
            var ec = ECDsa.Create();
            ec.ImportFromPem(key);
            return new ECDsaSecurityKey(ec);
        }
    }

    /// <summary>Says at start who may call, loudly when unauthenticated loopback callers are served.</summary>
    private sealed class IdentityAnnouncement(IOptions<IdentityOptions> options, ConfiguredApiKeys keys, IHostEnvironment environment, ILogger<IdentityAnnouncement> logger)
        : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var o = options.Value;
            logger.LogInformation("{Service} authenticates callers: {Keys} configured API key(s), JWT {Jwt}",
                environment.ApplicationName, keys.Count, o.Jwt.IsConfigured ? "on" : "off");
            if (o.AllowAnonymousOnLoopback)
            {
                logger.LogWarning("*** NO CREDENTIAL REQUIRED on loopback (Identity:AllowAnonymousOnLoopback=true): every call from this machine " +
                    "without one acts as owner '{Owner}' (roles user, admin). Turn this off and configure credentials before exposing {Service}. ***",
                    o.AnonymousOwnerId, environment.ApplicationName);
            }
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
