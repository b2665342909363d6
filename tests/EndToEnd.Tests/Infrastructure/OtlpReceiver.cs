using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using ChatServices.EndToEnd.Tests.Otlp;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChatServices.EndToEnd.Tests.Infrastructure;

/// <summary>One span as received, with the service that sent it.</summary>
public sealed record ReceivedSpan(string Service, string Scope, string TraceId, string SpanId, string ParentSpanId, string Name,
    IReadOnlyDictionary<string, string> Attributes);

/// <summary>
/// An OTLP/HTTP receiver (protobuf over HTTP/1.1) on loopback, as an OpenTelemetry collector would be: the services
/// export to it through their standard <c>OTEL_EXPORTER_OTLP_*</c> settings. Keeps every span; accepts and drops
/// metrics and logs.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();

    private OtlpReceiver(WebApplication app) => _app = app;

    public Uri Address { get; private set; } = null!;

    public IReadOnlyCollection<ReceivedSpan> Spans => _spans;

    /// <summary>The environment that points a service's exporter here, exporting quickly.</summary>
    public IReadOnlyDictionary<string, string> ExporterEnvironment => new Dictionary<string, string>
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Address.ToString().TrimEnd('/'),
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        ["OTEL_METRIC_EXPORT_INTERVAL"] = "1000",
    };

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.MapPost("/v1/traces", receiver.ReceiveTracesAsync);
        app.MapPost("/v1/metrics", () => Results.Bytes([], "application/x-protobuf"));
        app.MapPost("/v1/logs", () => Results.Bytes([], "application/x-protobuf"));
        await app.StartAsync();
        receiver.Address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return receiver;
    }

    private async Task<IResult> ReceiveTracesAsync(HttpRequest request)
    {
        Stream body = request.Body;
        if (request.Headers.ContentEncoding == "gzip") body = new GZipStream(body, CompressionMode.Decompress);
        using var buffer = new MemoryStream();
        await body.CopyToAsync(buffer);
        var export = ExportTraceServiceRequest.Parser.ParseFrom(buffer.ToArray());
        foreach (var resource in export.ResourceSpans)
        {
            var service = resource.Resource?.Attributes.FirstOrDefault(a => a.Key == "service.name")?.Value?.StringValue ?? "";
            foreach (var scope in resource.ScopeSpans)
            foreach (var span in scope.Spans)
                _spans.Enqueue(new ReceivedSpan(service, scope.Scope?.Name ?? "", Convert.ToHexStringLower(span.TraceId.Span),
                    Convert.ToHexStringLower(span.SpanId.Span), Convert.ToHexStringLower(span.ParentSpanId.Span), span.Name,
                    span.Attributes.ToDictionary(a => a.Key, a => Text(a.Value))));
        }
        return Results.Bytes(new ExportTraceServiceResponse().ToByteArray(), "application/x-protobuf");
    }

    private static string Text(AnyValue? value) => value?.ValueCase switch
    {
        AnyValue.ValueOneofCase.StringValue => value.StringValue,
        AnyValue.ValueOneofCase.IntValue => value.IntValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.DoubleValue => value.DoubleValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.BoolValue => value.BoolValue ? "true" : "false",
        _ => "",
    };

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
