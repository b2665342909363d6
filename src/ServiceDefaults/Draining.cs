using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// Graceful shutdown (configuration section <c>Shutdown</c>). On SIGTERM a service turns not ready (<c>/readyz</c>
/// 503, gRPC health NOT_SERVING), stops admitting new work and lets the work it has finish for up to
/// <see cref="DrainTimeout"/>; then it ends what remains with a clear status. The host's own shutdown timeout is
/// <see cref="DrainTimeout"/> plus <see cref="StopMargin"/>, the time to end what remains and record it. Keep
/// preStop + DrainTimeout + StopMargin within the pod's <c>terminationGracePeriodSeconds</c> (deploy/k8s).
/// </summary>
public sealed class DrainOptions
{
    public const string Section = "Shutdown";

    /// <summary>How long work in progress (streaming replies, generations) may go on after SIGTERM.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>Time after the drain to end what remains and write its outcome.</summary>
    public TimeSpan StopMargin { get; set; } = TimeSpan.FromSeconds(5);

    internal static void Add(IHostApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(Section);
        builder.Services.Configure<DrainOptions>(section);
        var options = section.Get<DrainOptions>() ?? new DrainOptions();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.DrainTimeout + options.StopMargin);
        builder.Services.AddHostedService<DrainReadiness>();
        builder.Services.AddSingleton(services =>
            new DrainDeadline(services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping, options.DrainTimeout));
    }
}

/// <summary>
/// The end of the drain: <see cref="Elapsed"/> fires <see cref="DrainTimeout"/> after the host began to stop (never,
/// while it runs). Work still going on then is ended with <see cref="Failure"/>, a status that says why.
/// </summary>
public sealed class DrainDeadline : IDisposable
{
    private readonly CancellationTokenSource _elapsed = new();
    private readonly CancellationTokenRegistration _stopping;

    public DrainDeadline(CancellationToken stopping, TimeSpan drainTimeout)
    {
        DrainTimeout = drainTimeout;
        _stopping = stopping.Register(() =>
        {
            if (drainTimeout <= TimeSpan.Zero) _elapsed.Cancel();
            else _elapsed.CancelAfter(drainTimeout);
        });
    }

    public TimeSpan DrainTimeout { get; }

    public CancellationToken Elapsed => _elapsed.Token;

    /// <summary>UNAVAILABLE (retry elsewhere), saying that <paramref name="service"/> stopped the work at the drain's end.</summary>
    public Grpc.Core.RpcException Failure(string service, string what) =>
        new(new Grpc.Core.Status(Grpc.Core.StatusCode.Unavailable,
            $"{service} shut down: {what} was stopped after the drain time of {DrainTimeout.TotalSeconds:0.#} s."));

    public void Dispose()
    {
        _stopping.Dispose();
        _elapsed.Dispose();
    }
}

/// <summary>Takes the service out of rotation (readiness false) the moment the host begins to stop.</summary>
internal sealed class DrainReadiness(Readiness readiness, IHostApplicationLifetime lifetime) : IHostedService
{
    private CancellationTokenRegistration _stopping;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _stopping = lifetime.ApplicationStopping.Register(() => readiness.MarkNotReady("draining: the service is shutting down"));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping.Dispose();
        return Task.CompletedTask;
    }
}
