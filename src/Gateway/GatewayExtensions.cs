using ChatServices.Gateway.Accounting;
using ChatServices.Gateway.Auth;
using ChatServices.Gateway.Conversations;
using ChatServices.Gateway.Limits;
using ChatServices.Gateway.OpenAi;
using ChatServices.Gateway.Upstream;
using ChatServices.Gateway.WebPage;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace ChatServices.Gateway;

/// <summary>How the Gateway is put together; Program.cs and the tests both build it this way.</summary>
public static class GatewayExtensions
{
    private const string CorsPolicy = "gateway";

    public static WebApplicationBuilder AddGateway(this WebApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(GatewayOptions.SectionName);
        builder.Services.Configure<GatewayOptions>(section);
        var options = section.Get<GatewayOptions>() ?? new GatewayOptions();

        // Bodies above the limit fail as they are read; ApiErrorMiddleware answers 413 in OpenAI's shape.
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes);

        // A route value or query string that does not bind (?page_size=abc) throws, so it is answered in OpenAI's shape.
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddSingleton(services =>
        {
            var request = services.GetRequiredService<IHttpContextAccessor>();
            return DialogueReplicas.ForEndpoints(options.DialogueEndpointList, services.GetRequiredService<TimeProvider>(), options.DialogueApiKey,
                () => request.HttpContext?.FindCaller()?.PartitionKey, TlsOptions.From(builder.Configuration));
        });
        builder.Services.AddSingleton<DialogueUpstream>();
        builder.Services.AddHostedService<UpstreamReadiness>();

        builder.Services.AddSingleton<ApiKeyStore>();
        builder.Services.AddSingleton<DialogueKeys>();
        builder.Services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorization();
        builder.Services.AddGatewayRateLimits();

        builder.Services.AddCors(cors => cors.AddPolicy(CorsPolicy, policy =>
        {
            if (options.CorsOrigins.Contains("*")) policy.AllowAnyOrigin();
            else policy.WithOrigins(options.CorsOrigins);
            policy.AllowAnyHeader().AllowAnyMethod().WithExposedHeaders("Retry-After");
        }));
        return builder;
    }

    public static WebApplication MapGateway(this WebApplication app)
    {
        app.UseMiddleware<ApiErrorMiddleware>();
        app.UseDefaultFiles();
        app.UseStaticFiles(WebPageHeaders.CreateStaticFileOptions());
        app.UseCors(CorsPolicy);
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();

        app.MapDefaultEndpoints();
        app.MapOpenAiApiV1();
        app.MapConversationsApi();
        app.MapUsageApi();

        app.Lifetime.ApplicationStarted.Register(() => LogStart(app));
        return app;
    }

    private static void LogStart(WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<GatewayOptions>>().Value;
        var keys = app.Services.GetRequiredService<ApiKeyStore>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("ChatServices.Gateway");
        logger.LogInformation("Gateway serving on {Urls}; DialogueService at {Endpoint}; {Keys} API key(s) configured",
            string.Join(", ", app.Urls), string.Join(", ", options.DialogueEndpointList), keys.Count);
        if (options.AllowAnonymousOnLoopback)
        {
            logger.LogWarning("*** NO API KEY REQUIRED on loopback (Gateway:AllowAnonymousOnLoopback=true): every request from this machine " +
                "without a valid key acts as owner '{Owner}'. Turn this off and configure Gateway:ApiKeys before exposing the gateway. ***",
                options.AnonymousOwnerId);
        }
    }
}
