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
