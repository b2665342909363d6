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
        app.MapHealthChecks(LivenessPath, new HealthCheckOptions { Predicate = check => !check.Tags.Contains(ReadyTag) });
        app.MapHealthChecks(ReadinessPath, new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadyTag),
            ResponseWriter = WriteReadiness,
        });
        return app;
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
