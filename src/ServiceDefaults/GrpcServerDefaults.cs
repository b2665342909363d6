using System.IO.Compression;
using ChatServices.ServiceDefaults.Identity;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// Server-wide gRPC settings every gRPC service shares (configuration section <c>Grpc</c>, for example
/// <c>Grpc__MaxReceiveMessageSize</c>).
/// </summary>
public sealed class GrpcServerSettings
{
    /// <summary>Largest request message accepted, in bytes (after decompression); larger ones end the call with
    /// RESOURCE_EXHAUSTED. Default 4 MiB, as in every gRPC implementation.</summary>
    public int MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest response message sent, in bytes; null for no limit.</summary>
    public int? MaxSendMessageSize { get; set; }

    /// <summary>"gzip" to compress every response message for clients that accept gzip; null (default) sends
    /// responses uncompressed. Requests compressed with gzip are always accepted.</summary>
    public string? ResponseCompressionAlgorithm { get; set; }

    public CompressionLevel ResponseCompressionLevel { get; set; } = CompressionLevel.Fastest;

    /// <summary>Put a handler exception's message in <c>grpc-message</c>. Off by default: clients see only
    /// "Exception was thrown by handler." and internals stay in the server log.</summary>
    public bool EnableDetailedErrors { get; set; }
}

/// <summary>
/// The gRPC server (grpc-dotnet) as every ChatServices gRPC service hosts it: <see cref="AddGrpcServiceDefaults"/>
/// registers it with the shared settings and interceptors, health (following <see cref="Readiness"/>), reflection
/// and the callers' identity (<see cref="ServiceIdentity"/>); <see cref="MapGrpcServiceDefaults"/> maps <c>grpc.health.v1.Health</c> and server reflection
/// (<c>grpc.reflection.v1alpha</c> and <c>v1</c>).
/// </summary>
public static class GrpcServerDefaults
{
    private const string ServerCallHandlerCategory = "Grpc.AspNetCore.Server.ServerCallHandler";

    public static TBuilder AddGrpcServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var settings = builder.Configuration.GetSection("Grpc").Get<GrpcServerSettings>() ?? new GrpcServerSettings();
        builder.Services.AddGrpc(options => Apply(settings, options));
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcReadinessHealth();
        builder.AddServiceIdentity();
        // grpc-dotnet reports every status a handler throws on purpose at information level with its stack trace;
        // CallOutcomeInterceptor logs those once, briefly. Handler failures (errors) still come through.
        builder.Logging.AddFilter(ServerCallHandlerCategory, LogLevel.Warning);
        return builder;
    }

    /// <summary>Copies <paramref name="settings"/> onto grpc-dotnet's options and adds the shared interceptors.</summary>
    public static void Apply(GrpcServerSettings settings, GrpcServiceOptions options)
    {
        options.MaxReceiveMessageSize = settings.MaxReceiveMessageSize;
        options.MaxSendMessageSize = settings.MaxSendMessageSize;
        options.ResponseCompressionAlgorithm = settings.ResponseCompressionAlgorithm;
        options.ResponseCompressionLevel = settings.ResponseCompressionLevel;
        options.EnableDetailedErrors = settings.EnableDetailedErrors;
        // gzip both ways; a corrupt gzip request is INTERNAL, as the status-code table prescribes.
        options.CompressionProviders = [new GrpcGzipCompression(settings.ResponseCompressionLevel)];
        if (!options.Interceptors.Any(i => i.Type == typeof(CallOutcomeInterceptor))) options.Interceptors.Add<CallOutcomeInterceptor>();
    }

    /// <summary>Maps health and reflection; call it after the app's own <c>MapGrpcService</c> calls.</summary>
    public static WebApplication MapGrpcServiceDefaults(this WebApplication app)
    {
        app.UseMiddleware<AbandonedBeforeHandlerMiddleware>();
        app.MapGrpcReadinessHealth();
        app.MapGrpcReflectionService();
        return app;
    }
}
