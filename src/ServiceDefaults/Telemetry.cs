using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// OpenTelemetry for every service: traces, metrics and logs, exported over OTLP when the standard
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (protocol, headers, service name and resource attributes come from
/// the other standard <c>OTEL_*</c> variables). W3C trace context crosses service boundaries in the HTTP/2
/// headers of each gRPC call: HttpClient writes <c>traceparent</c>, ASP.NET Core reads it.
/// </summary>
public static class Telemetry
{
    /// <summary>Prefix of every ActivitySource and Meter the project's own code creates.</summary>
    public const string SourcePrefix = "ChatServices.";

    // Sources that the platform itself emits, and the project's own.
    private static readonly string[] ActivitySources = ["Microsoft.AspNetCore", "System.Net.Http", SourcePrefix + "*"];
    private static readonly string[] Meters =
    [
        "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.RateLimiting",
        "System.Net.Http", "System.Runtime", SourcePrefix + "*",
    ];

    /// <summary>True when an OTLP endpoint is configured; without one nothing is exported.</summary>
    public static bool IsOtlpConfigured(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);

    internal static void AddOpenTelemetryDefaults(IHostApplicationBuilder builder)
    {
        var serviceName = builder.Configuration["OTEL_SERVICE_NAME"] ?? builder.Environment.ApplicationName;
        var export = IsOtlpConfigured(builder.Configuration);
        var resource = ResourceBuilder.CreateDefault().AddService(serviceName);

        builder.Services.AddSingleton(_ =>
        {
            var tracing = Sdk.CreateTracerProviderBuilder().SetResourceBuilder(resource).AddSource(ActivitySources);
            if (export) tracing.AddOtlpExporter();
            return new TelemetryProviders(tracing.Build(), BuildMeters(resource, export));
        });
        builder.Services.AddHostedService<TelemetryStarter>();

        if (export)
        {
            builder.Logging.AddOpenTelemetry(o =>
            {
                o.SetResourceBuilder(resource);
                o.IncludeScopes = true;
                o.IncludeFormattedMessage = true;
                o.AddOtlpExporter();
            });
        }
    }

    private static MeterProvider BuildMeters(ResourceBuilder resource, bool export)
    {
        var metrics = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter(Meters);
        if (export) metrics.AddOtlpExporter();
        return metrics.Build();
    }

    /// <summary>Owns the SDK providers; the container disposes it (flushing pending telemetry) at shutdown.</summary>
    internal sealed class TelemetryProviders(TracerProvider? tracer, MeterProvider? meter) : IDisposable
    {
        public void Dispose()
        {
            tracer?.Dispose();
            meter?.Dispose();
        }
    }

    /// <summary>Builds the providers when the host starts, so that listening begins before the first request.</summary>
    private sealed class TelemetryStarter(TelemetryProviders providers) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            GC.KeepAlive(providers);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

/// <summary>
/// Whether prompt and completion text may appear in logs and spans. Off unless <c>Telemetry:LogContent</c> is true:
/// conversations are personal data.
/// </summary>
public sealed class ContentLoggingOptions
{
    public bool LogContent { get; set; }
}
