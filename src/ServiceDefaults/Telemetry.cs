using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// OpenTelemetry for every service, on the official SDK hosting (<c>OpenTelemetry.Extensions.Hosting</c>) and
/// instrumentation packages. Metrics are always collected and served as Prometheus text at <c>/metrics</c> (see
/// <see cref="ManagementEndpoint"/>); traces, metrics and logs are also exported over OTLP when the standard
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (protocol, headers, service name and resource attributes come from the
/// other standard <c>OTEL_*</c> variables). W3C trace context crosses service boundaries in the HTTP/2 headers of
/// each gRPC call: the client writes <c>traceparent</c>, ASP.NET Core reads it.
/// </summary>
public static class Telemetry
{
    /// <summary>Prefix of every ActivitySource and Meter the project's own code creates.</summary>
    public const string SourcePrefix = "ChatServices.";

    // Meters the platform emits beyond those the instrumentation packages add (ASP.NET Core hosting and Kestrel,
    // HttpClient, the runtime), and the project's own.
    private static readonly string[] Meters =
    [
        "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.RateLimiting",
        "System.Net.Http", "System.Runtime", SourcePrefix + "*",
    ];

    /// <summary>
    /// Bucket boundaries, in seconds, for token latencies (time to first token, time per output token, inter-token
    /// latency): the SDK's defaults (0, 5, 10, … 10 000) suit milliseconds, not seconds, and would put every token
    /// latency in the first bucket. These are the GenAI semantic conventions' advice for
    /// <c>gen_ai.server.time_to_first_token</c>: fine steps below 100 ms, where a GPU's per-token latencies fall.
    /// </summary>
    public static readonly double[] TokenLatencyBuckets =
        [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

    /// <summary>
    /// Bucket boundaries, in seconds, for whole requests and their time in the queue (the GenAI semantic conventions'
    /// advice for <c>gen_ai.server.request.duration</c>).
    /// </summary>
    public static readonly double[] RequestLatencyBuckets =
        [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

    /// <summary>Bucket boundaries for token counts per request (the GenAI semantic conventions' advice).</summary>
    public static readonly double[] TokenCountBuckets =
        [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

    /// <summary>True when an OTLP endpoint is configured; without one nothing is exported.</summary>
    public static bool IsOtlpConfigured(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);

    internal static void AddOpenTelemetryDefaults(IHostApplicationBuilder builder)
    {
        var serviceName = builder.Configuration["OTEL_SERVICE_NAME"] ?? builder.Environment.ApplicationName;
        var export = IsOtlpConfigured(builder.Configuration);

        var telemetry = builder.Services.AddOpenTelemetry().ConfigureResource(resource => resource.AddService(serviceName));
        // Spans exist to be exported: without an OTLP endpoint nothing would read them, and recording them costs
        // every request (and the trace context need not travel), so tracing is on only with an exporter.
        if (export)
        {
            telemetry.WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation(o => o.EnrichWithHttpResponse = NameGrpcServerSpan)
                .AddHttpClientInstrumentation()
                // A gRPC call made with Grpc.Net.Client is one client span: the HTTP/2 request under it would
                // only repeat it (same peer, same timing), so the HttpClient span is suppressed.
                .AddGrpcClientInstrumentation(o => o.SuppressDownstreamInstrumentation = true)
                .AddSource(SourcePrefix + "*")
                .AddOtlpExporter());
        }

        telemetry.WithMetrics(metrics =>
        {
            metrics.AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter(Meters)
                .AddView(instrument => BucketsFor(instrument) is { } buckets
                    ? new ExplicitBucketHistogramConfiguration { Boundaries = buckets }
                    : null)
                .AddPrometheusExporter();
            if (export) metrics.AddOtlpExporter();
        });

        if (export)
        {
            builder.Logging.AddOpenTelemetry(o =>
            {
                o.IncludeScopes = true;
                o.IncludeFormattedMessage = true;
                o.AddOtlpExporter();
            });
        }
    }

    /// <summary>
    /// Buckets for the GenAI client histograms (DialogueService's <c>gen_ai.client.*</c>), whose instruments carry no
    /// advice of their own; instruments that do (the engine's <c>gen_ai.server.*</c>) keep theirs.
    /// </summary>
    private static double[]? BucketsFor(System.Diagnostics.Metrics.Instrument instrument) => instrument.Name switch
    {
        "gen_ai.client.operation.duration" => RequestLatencyBuckets,
        "gen_ai.client.token.usage" => TokenCountBuckets,
        _ => null,
    };

    /// <summary>
    /// Names a gRPC request's server span after the method ("chat.v1.Dialogue/Chat") and tags it with the RPC
    /// attributes of the semantic conventions. The instrumentation names every other request after its route
    /// ("POST /v1/chat/completions"); a gRPC method's route would read "POST /chat.v1.Dialogue/Chat". Runs when the
    /// request ends, after the instrumentation has named the span.
    /// </summary>
    private static void NameGrpcServerSpan(Activity activity, HttpResponse response)
    {
        var request = response.HttpContext.Request;
        if (request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) != true) return;
        var path = request.Path.Value ?? "/";
        activity.DisplayName = path.TrimStart('/');
        activity.SetTag("rpc.system", "grpc");
        var slash = path.LastIndexOf('/');
        if (slash > 0)
        {
            activity.SetTag("rpc.service", path[1..slash]);
            activity.SetTag("rpc.method", path[(slash + 1)..]);
        }
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
