using Grpc.AspNetCore.HealthChecks;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.HealthCheck;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// <c>grpc.health.v1.Health</c> (Check and Watch, from Grpc.AspNetCore.HealthChecks) driven by the service's
/// <see cref="Readiness"/>: the whole server ("") and each named gRPC service report NOT_SERVING while the ASP.NET
/// Core health checks tagged "ready" fail (the same checks as <c>/readyz</c>) and SERVING once they pass.
/// <see cref="GrpcServerDefaults.AddGrpcServiceDefaults"/> registers it and
/// <see cref="GrpcServerDefaults.MapGrpcServiceDefaults"/> maps it, naming every gRPC service the app has mapped.
/// </summary>
public static class GrpcHealth
{
    /// <summary>The tag of the health checks that decide readiness (see ServiceDefaultsExtensions).</summary>
    public const string ReadyTag = "ready";

    /// <summary>
    /// Registers the gRPC health service with the whole server ("") mapped to the health checks tagged "ready"
    /// (<see cref="MapGrpcReadinessHealth"/> adds each gRPC service the app maps). Watch streams see a readiness change at once (not at the health-check publisher's
    /// next period, 30 s by default). When the host starts stopping, every mapped service turns NOT_SERVING and
    /// every Watch stream receives that and then ends, so that open watches do not hold up a graceful shutdown.
    /// </summary>
    public static IServiceCollection AddGrpcReadinessHealth(this IServiceCollection services)
    {
        services.AddGrpcHealthChecks(o =>
        {
            o.Services.Clear();
            o.Services.Map("", IsReadinessCheck);

            // Check answers from the statuses GrpcReadinessHealth keeps current, so Check and Watch always agree.
            o.UseHealthChecksCache = true;
            // DrainingWatchInterceptor ends Watch streams on shutdown, after they have been sent NOT_SERVING
            // (the package's own completion would end them before that message could be written).
            o.SuppressCompletionOnShutdown = true;
        });

        // GrpcReadinessHealth replaces the package's periodic publisher: one writer of the statuses, so that a
        // periodic report computed before a readiness change can never overwrite the change.
        services.RemoveAll<IHealthCheckPublisher>(d => d.ImplementationType?.Assembly == typeof(GrpcHealthChecksOptions).Assembly);
        services.TryAddSingleton<GrpcReadinessHealth>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHealthCheckPublisher, GrpcReadinessHealth>(sp => sp.GetRequiredService<GrpcReadinessHealth>()));
        services.AddHostedService(sp => sp.GetRequiredService<GrpcReadinessHealth>());

        // Registered in DI so that grpc-dotnet resolves one instance instead of activating one per call.
        services.TryAddSingleton<DrainingWatchInterceptor>();
        services.AddGrpc(o =>
        {
            if (!o.Interceptors.Any(i => i.Type == typeof(DrainingWatchInterceptor)))
            {
                o.Interceptors.Add<DrainingWatchInterceptor>();
            }
        });
        return services;
    }

    /// <summary>
    /// Maps the health service and gives every gRPC service the app has mapped so far a name in it (an unknown name
    /// answers NOT_FOUND, as the protocol says). Call it after the app's own <c>MapGrpcService</c> calls.
    /// </summary>
    public static WebApplication MapGrpcReadinessHealth(this WebApplication app)
    {
        var mapped = ((IEndpointRouteBuilder)app).DataSources
            .SelectMany(d => d.Endpoints)
            .Select(e => e.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method.ServiceName)
            .OfType<string>()
            .Distinct(StringComparer.Ordinal)
            .ToArray();
        if (mapped.Length == 0)
            throw new InvalidOperationException("Map the app's gRPC services before MapGrpcServiceDefaults.");
        var services = app.Services.GetRequiredService<IOptions<GrpcHealthChecksOptions>>().Value.Services;
        foreach (var name in mapped) services.Map(name, IsReadinessCheck);
        app.MapGrpcHealthChecksService();
        return app;
    }

    private static bool IsReadinessCheck(HealthCheckMapContext check) => check.Tags.Contains(ReadyTag);

    private static void RemoveAll<T>(this IServiceCollection services, Func<ServiceDescriptor, bool> match)
    {
        foreach (var descriptor in services.Where(d => d.ServiceType == typeof(T) && match(d)).ToList())
        {
            services.Remove(descriptor);
        }
    }
}

/// <summary>
/// Keeps the gRPC health statuses (<see cref="HealthServiceImpl"/>) equal to the health checks each mapped
/// service names: refreshed on every <see cref="Readiness"/> change, at start, and on the health-check publisher's
/// period (for checks that change without an event). On ApplicationStopping every mapped service turns
/// NOT_SERVING for good and <see cref="Draining"/> fires.
/// Invariant: refreshes run one at a time and each runs the checks after it starts, so the last status written
/// reflects the state after the last change.
/// </summary>
public sealed class GrpcReadinessHealth(
    HealthServiceImpl health,
    HealthCheckService checks,
    Readiness readiness,
    IOptions<GrpcHealthChecksOptions> options,
    IHostApplicationLifetime lifetime,
    ILogger<GrpcReadinessHealth> logger) : IHealthCheckPublisher, IHostedService, IDisposable
{
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private readonly Lock _writing = new();
    private readonly CancellationTokenSource _draining = new();
    private readonly Dictionary<string, ServingStatus> _written = new(StringComparer.Ordinal);
    private CancellationTokenRegistration _stopping;
    private bool _stopped;

    /// <summary>Fires when the host starts stopping, after every mapped service was set NOT_SERVING.</summary>
    public CancellationToken Draining => _draining.Token;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Write(_ => ServingStatus.NotServing);
        readiness.Changed += OnReadinessChanged;
        _stopping = lifetime.ApplicationStopping.Register(Drain);
        await RefreshAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        readiness.Changed -= OnReadinessChanged;
        Drain();
        return Task.CompletedTask;
    }

    /// <summary>The periodic publisher's call: the report is not used, the checks run again in order (see the
    /// class's invariant); they are cheap.</summary>
    Task IHealthCheckPublisher.PublishAsync(HealthReport report, CancellationToken cancellationToken) => RefreshAsync(cancellationToken);

    /// <summary>Runs the health checks and writes the status of every mapped service.</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken = default)
    {
        await _refreshing.WaitAsync(cancellationToken);
        try
        {
            var report = await checks.CheckHealthAsync(cancellationToken);
            Write(mapping => StatusOf(mapping, report));
        }
        finally
        {
            _refreshing.Release();
        }
    }

    public void Dispose()
    {
        _stopping.Dispose();
        _draining.Dispose();
        _refreshing.Dispose();
    }

    private async void OnReadinessChanged(bool ready)
    {
        try
        {
            await RefreshAsync();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            logger.LogWarning(e, "gRPC health statuses were not refreshed after a readiness change");
        }
    }

    private void Drain()
    {
        lock (_writing)
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            foreach (var mapping in options.Value.Services)
            {
                SetStatus(mapping.Name, ServingStatus.NotServing);
            }
        }

        // Every Watch stream has NOT_SERVING queued by now; ending them lets it go out first.
        _draining.Cancel();
    }

    private void Write(Func<ServiceMapping, ServingStatus> status)
    {
        lock (_writing)
        {
            if (_stopped)
            {
                return;
            }

            foreach (var mapping in options.Value.Services)
            {
                SetStatus(mapping.Name, status(mapping));
            }
        }
    }

    // HealthServiceImpl sends watchers every SetStatus, changed or not; watchers hear changes only.
    private void SetStatus(string service, ServingStatus status)
    {
        if (!_written.TryGetValue(service, out var current) || current != status)
        {
            _written[service] = status;
            health.SetStatus(service, status);
        }
    }

    /// <summary>As Grpc.AspNetCore.HealthChecks decides it: NOT_SERVING when any matching check is unhealthy,
    /// SERVING when all pass (degraded counts as passing), UNKNOWN when no check matches.</summary>
    private static ServingStatus StatusOf(ServiceMapping mapping, HealthReport report)
    {
        var status = ServingStatus.Unknown;
        foreach (var (name, entry) in report.Entries)
        {
            // Map(...) sets HealthCheckPredicate (the obsolete Predicate form is not used here).
            var matches = mapping.HealthCheckPredicate?.Invoke(new HealthCheckMapContext(name, entry.Tags)) ?? true;
            if (!matches)
            {
                continue;
            }

            if (entry.Status == HealthStatus.Unhealthy)
            {
                return ServingStatus.NotServing;
            }

            status = ServingStatus.Serving;
        }

        return status;
    }
}

/// <summary>
/// Ends <c>grpc.health.v1.Health/Watch</c> calls when the host stops. The health service sees a call context
/// whose cancellation token also fires on <see cref="GrpcReadinessHealth.Draining"/>: its watch loop then writes
/// what is queued (NOT_SERVING) and returns, ending the call with OK. The response stream itself keeps the real
/// call's token, so that last write still goes out.
/// </summary>
internal sealed class DrainingWatchInterceptor(GrpcReadinessHealth health) : Interceptor
{
    private const string WatchMethod = "/grpc.health.v1.Health/Watch";

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (context.Method != WatchMethod)
        {
            await continuation(request, responseStream, context);
            return;
        }

        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, health.Draining);
        await continuation(request, responseStream, new EndingServerCallContext(context, ending.Token));
    }

    /// <summary>The call's context with another cancellation token.</summary>
    private sealed class EndingServerCallContext : ServerCallContext
    {
        private readonly ServerCallContext inner;
        private readonly CancellationToken cancellationToken;

        public EndingServerCallContext(ServerCallContext inner, CancellationToken cancellationToken)
        {
            this.inner = inner;
            this.cancellationToken = cancellationToken;
            // GetHttpContext() finds the HttpContext of a context it did not create under this documented key.
            inner.UserState["__HttpContext"] = inner.GetHttpContext();
        }

        protected override string MethodCore => inner.Method;
        protected override string HostCore => inner.Host;
        protected override string PeerCore => inner.Peer;
        protected override DateTime DeadlineCore => inner.Deadline;
        protected override Metadata RequestHeadersCore => inner.RequestHeaders;
        protected override CancellationToken CancellationTokenCore => cancellationToken;
        protected override Metadata ResponseTrailersCore => inner.ResponseTrailers;
        protected override AuthContext AuthContextCore => inner.AuthContext;
        protected override IDictionary<object, object> UserStateCore => inner.UserState;

        protected override Status StatusCore
        {
            get => inner.Status;
            set => inner.Status = value;
        }

        protected override WriteOptions? WriteOptionsCore
        {
            get => inner.WriteOptions;
            set => inner.WriteOptions = value;
        }

        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => inner.WriteResponseHeadersAsync(responseHeaders);

        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => inner.CreatePropagationToken(options);
    }
}
