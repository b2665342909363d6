using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
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
    public const string MetricsPath = "/metrics";
    private const string ReadyTag = "ready";

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
            o.IncludeScopes = true;
        });
        // A service that is not ready yet (loading its model) or any more (draining) is not an error, but the
        // health-check service logs every unhealthy result of every probe as one. Readiness is visible in /readyz,
        // gRPC health and the logs of whatever loads.
        builder.Logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService", LogLevel.Critical);

        Telemetry.AddOpenTelemetryDefaults(builder);
        AddManagementEndpoint(builder);
        TlsOptions.ConfigureServer(builder.Services, TlsOptions.From(builder.Configuration));
        builder.Services.Configure<ContentLoggingOptions>(builder.Configuration.GetSection("Telemetry"));

        builder.Services.AddSingleton<Readiness>();
        DrainOptions.Add(builder);
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy())
            .AddCheck<ReadinessHealthCheck>("ready", tags: [ReadyTag]);
        return builder;
    }

    /// <summary>
    /// Maps <c>/healthz</c> (liveness: the process answers), <c>/readyz</c> (readiness: what it serves is loaded) and
    /// <c>/metrics</c> (Prometheus text). The health endpoints answer plain text on every endpoint; readiness answers
    /// 503 with the reason while not ready. <c>/metrics</c> answers only on the management endpoint where one is
    /// configured (see <see cref="ManagementEndpoint"/>), else on the main one.
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks(LivenessPath, new HealthCheckOptions { Predicate = check => !check.Tags.Contains(ReadyTag) });
        app.MapHealthChecks(ReadinessPath, new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadyTag),
            ResponseWriter = WriteReadiness,
        });
        var management = app.Services.GetRequiredService<ManagementEndpoint>();
        var allowed = MetricsAllowedNetworks(app.Configuration);
        app.MapPrometheusScrapingEndpoint(MetricsPath, meterProvider: null,
            configureBranchedPipeline: metrics =>
            {
                if (management.IsConfigured) metrics.Use(OnlyOnManagementEndpoint);
                if (allowed.Count > 0) metrics.Use((context, next) => OnlyFromNetworks(context, next, allowed));
            },
            optionsName: null);
        return app;
    }

    /// <summary>
    /// <c>Telemetry:MetricsAllowedNetworks</c>: the networks (CIDR, e.g. <c>10.0.0.0/8</c>) whose callers may read
    /// <c>/metrics</c>; empty (the default) admits every caller that reaches the endpoint. A bad entry stops the start.
    /// </summary>
    public static IReadOnlyList<System.Net.IPNetwork> MetricsAllowedNetworks(Microsoft.Extensions.Configuration.IConfiguration configuration) =>
        [.. configuration.GetSection("Telemetry:MetricsAllowedNetworks").GetChildren()
            .Select(entry => entry.Value)
            .Where(value => !string.IsNullOrWhiteSpace(value))
            .Select(value => System.Net.IPNetwork.TryParse(value!.Trim(), out var network) ? network
                : throw new InvalidOperationException($"Telemetry:MetricsAllowedNetworks: '{value}' is not a network in CIDR notation (for example 10.0.0.0/8)."))];

    private static Task OnlyFromNetworks(HttpContext context, Func<Task> next, IReadOnlyList<System.Net.IPNetwork> allowed)
    {
        var remote = context.Connection.RemoteIpAddress;
        if (remote is { IsIPv4MappedToIPv6: true }) remote = remote.MapToIPv4();
        if (remote is not null && allowed.Any(network => network.Contains(remote))) return next();
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        return context.Response.WriteAsync("/metrics is not served to this address (Telemetry:MetricsAllowedNetworks).");
    }

    /// <summary>
    /// Registers <see cref="ManagementEndpoint"/> and, when <c>Kestrel:Endpoints:Management</c> is configured, marks
    /// the connections Kestrel accepts on it.
    /// </summary>
    private static void AddManagementEndpoint(IHostApplicationBuilder builder)
    {
        var management = new ManagementEndpoint(builder.Configuration);
        builder.Services.AddSingleton(management);
        if (!management.IsConfigured) return;
        // Runs after the host's own Kestrel setup, which creates the loader for the "Kestrel" configuration section.
        builder.Services.Configure<KestrelServerOptions>(kestrel =>
            kestrel.ConfigurationLoader?.Endpoint(ManagementEndpoint.EndpointName, endpoint => management.Attach(endpoint.ListenOptions)));
    }

    private static Task OnlyOnManagementEndpoint(HttpContext context, Func<Task> next)
    {
        if (ManagementEndpoint.IsManagementRequest(context)) return next();
        context.Response.StatusCode = StatusCodes.Status404NotFound;
        return Task.CompletedTask;
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
