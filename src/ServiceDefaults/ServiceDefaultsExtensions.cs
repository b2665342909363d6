using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// The hosting defaults every ChatServices process shares. A service's Program.cs calls
/// <see cref="AddServiceDefaults"/> on its builder and <see cref="MapDefaultEndpoints"/> on its app.
/// </summary>
public static class ServiceDefaultsExtensions
{
    public const string LivenessPath = "/healthz";
    public const string ReadinessPath = "/readyz";
    private const string ReadyTag = "ready";

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
            o.IncludeScopes = true;
        });

        Telemetry.AddOpenTelemetryDefaults(builder);
        builder.Services.Configure<ContentLoggingOptions>(builder.Configuration.GetSection("Telemetry"));

        builder.Services.AddSingleton<Readiness>();
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy())
            .AddCheck<ReadinessHealthCheck>("ready", tags: [ReadyTag]);
        return builder;
    }

    /// <summary>
    /// Maps <c>/healthz</c> (liveness: the process answers) and <c>/readyz</c> (readiness: what it serves is
    /// loaded). Both answer plain text; readiness answers 503 with the reason while not ready.
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.Use(NameRequestSpan);
        app.MapHealthChecks(LivenessPath, new HealthCheckOptions { Predicate = check => !check.Tags.Contains(ReadyTag) });
        app.MapHealthChecks(ReadinessPath, new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadyTag),
            ResponseWriter = WriteReadiness,
        });
        return app;
    }

    /// <summary>
    /// Names the request's span after what was asked ("POST /v1/chat/completions", "chat.v1.Dialogue/Chat" for
    /// gRPC) and tags it with the OpenTelemetry HTTP / RPC attributes, which ASP.NET Core's own activity lacks.
    /// </summary>
    private static async Task NameRequestSpan(HttpContext context, Func<Task> next)
    {
        var activity = System.Diagnostics.Activity.Current;
        if (activity is not null)
        {
            var path = context.Request.Path.Value ?? "/";
            var grpc = context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) == true;
            activity.DisplayName = grpc ? path.TrimStart('/') : $"{context.Request.Method} {path}";
            activity.SetTag("http.request.method", context.Request.Method);
            activity.SetTag("url.path", path);
            if (grpc)
            {
                activity.SetTag("rpc.system", "grpc");
                var slash = path.LastIndexOf('/');
                if (slash > 0)
                {
                    activity.SetTag("rpc.service", path[1..slash]);
                    activity.SetTag("rpc.method", path[(slash + 1)..]);
                }
            }
        }
        await next();
        activity?.SetTag("http.response.status_code", context.Response.StatusCode);
    }

    private static Task WriteReadiness(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        var entry = report.Entries.Values.FirstOrDefault();
        return context.Response.WriteAsync(report.Status == HealthStatus.Healthy
            ? "Healthy"
            : $"Unhealthy: {entry.Description ?? "not ready"}");
    }

    private sealed class ReadinessHealthCheck(Readiness readiness) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(readiness.IsReady
                ? HealthCheckResult.Healthy()
                : HealthCheckResult.Unhealthy(readiness.NotReadyReason));
    }
}
