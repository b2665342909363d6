using Grpc.AspNetCore.HealthChecks;
using Grpc.AspNetCore.Server;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// <c>grpc.health.v1.Health</c> (Grpc.AspNetCore.HealthChecks) following <see cref="Readiness"/>: the whole server
/// ("") and every gRPC service the app maps (by full name, e.g. <c>chat.v1.Inference</c>) report SERVING exactly
/// when the ASP.NET Core health checks pass, so Kubernetes' gRPC probe and <c>/readyz</c> agree. Check runs the
/// checks on each call; Watch streams see a readiness change at once (pushed on <see cref="Readiness.Changed"/>,
/// not only at the health-check publisher's period), and every status turns NOT_SERVING when the host starts
/// stopping, so a draining replica leaves rotation before its connections close.
/// </summary>
public static class GrpcHealth
{
    public static IServiceCollection AddGrpcReadinessHealth(this IServiceCollection services)
    {
        services.AddGrpcHealthChecks();
        services.AddSingleton<MappedServices>();
        services.AddHostedService<ReadinessPush>();
        return services;
    }

    /// <summary>
    /// Maps the health service and gives every gRPC service mapped so far a name in it (an unknown name answers
    /// NOT_FOUND, as the protocol says). Call it after the app's own <c>MapGrpcService</c> calls.
    /// </summary>
    public static WebApplication MapGrpcReadinessHealth(this WebApplication app)
    {
        var names = ((IEndpointRouteBuilder)app).DataSources
            .SelectMany(d => d.Endpoints)
            .Select(e => e.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method.ServiceName)
            .OfType<string>()
            .Distinct()
            .ToArray();
        if (names.Length == 0)
            throw new InvalidOperationException("Map the app's gRPC services before MapGrpcReadinessHealth (MapGrpcServiceDefaults).");
        var options = app.Services.GetRequiredService<IOptions<GrpcHealthChecksOptions>>().Value;
        foreach (var name in names) options.Services.Map(name, _ => true);
        app.Services.GetRequiredService<MappedServices>().Names = names;
        app.MapGrpcHealthChecksService();
        return app;
    }

    /// <summary>The full names of the app's own gRPC services, as the health service knows them.</summary>
    private sealed class MappedServices
    {
        public IReadOnlyList<string> Names { get; set; } = [];
    }

    /// <summary>Pushes readiness changes and shutdown into the health service as they happen.</summary>
    private sealed class ReadinessPush(Readiness readiness, HealthServiceImpl health, MappedServices services, IHostApplicationLifetime lifetime)
        : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            readiness.Changed += Publish;
            lifetime.ApplicationStarted.Register(() => Publish(readiness.IsReady));
            lifetime.ApplicationStopping.Register(() =>
            {
                readiness.Changed -= Publish;
                Publish(false);
            });
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        private void Publish(bool ready)
        {
            var status = ready ? HealthCheckResponse.Types.ServingStatus.Serving : HealthCheckResponse.Types.ServingStatus.NotServing;
            health.SetStatus("", status);
            foreach (var name in services.Names) health.SetStatus(name, status);
        }
    }
}
