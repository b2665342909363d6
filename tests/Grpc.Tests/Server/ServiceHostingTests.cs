using System.Net;
using ChatServices.Grpc.Tests.Infrastructure;
using ChatServices.Grpc.Tests.Interop;
using ChatServices.ServiceDefaults;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace ChatServices.Grpc.Tests.Server;

/// <summary>The hosting the services' Program.cs uses (AddServiceDefaults, AddGrpcServiceDefaults,
/// MapGrpcServiceDefaults): gRPC health follows <see cref="Readiness"/>, as /readyz does,
/// in Check and promptly in Watch, and turns NOT_SERVING when the host stops.</summary>
public sealed class ServiceHostingTests
{
    /// <summary>Far below the health-check publisher's default period (30 s): a change must reach watchers at once.</summary>
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task Grpc_health_follows_readiness_in_Check_and_promptly_in_Watch_and_drains_on_stop()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.AddServiceDefaults();
        builder.Logging.ClearProviders();
        builder.AddGrpcServiceDefaults();
        builder.Services.AddSingleton<CallLog>();
        var app = builder.Build();
        app.MapDefaultEndpoints();
        app.MapGrpcService<EchoService>();
        app.MapGrpcServiceDefaults();
        await app.StartAsync();
        var readiness = app.Services.GetRequiredService<Readiness>();

        using var channel = GrpcChannel.ForAddress(app.Urls.First());
        var health = new Health.HealthClient(channel);
        Assert.Equal(ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Equal(ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest { Service = Echo.Descriptor.FullName })).Status);
        using var watch = health.Watch(new HealthCheckRequest());
        using var watchEcho = health.Watch(new HealthCheckRequest { Service = Echo.Descriptor.FullName });
        Assert.Equal(ServingStatus.NotServing, await NextAsync(watch, TimeSpan.FromSeconds(10)));
        Assert.Equal(ServingStatus.NotServing, await NextAsync(watchEcho, TimeSpan.FromSeconds(10)));

        readiness.MarkReady();
        Assert.Equal(ServingStatus.Serving, await NextAsync(watch, Promptly));
        Assert.Equal(ServingStatus.Serving, await NextAsync(watchEcho, Promptly));
        Assert.Equal(ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Equal(ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest { Service = Echo.Descriptor.FullName })).Status);

        readiness.MarkNotReady("lost the database");
        Assert.Equal(ServingStatus.NotServing, await NextAsync(watch, Promptly));
        Assert.Equal(ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Equal(ServingStatus.NotServing, await NextAsync(watchEcho, Promptly));

        readiness.MarkReady();
        Assert.Equal(ServingStatus.Serving, await NextAsync(watch, Promptly));
        Assert.Equal(ServingStatus.Serving, await NextAsync(watchEcho, Promptly));

        // Stopping: every watch hears NOT_SERVING, then ends, and the stop is not held up by them.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var stopping = app.StopAsync();
        Assert.Equal(ServingStatus.NotServing, await NextAsync(watch, Promptly));
        Assert.Equal(ServingStatus.NotServing, await NextAsync(watchEcho, Promptly));
        Assert.False(await watch.ResponseStream.MoveNext());
        Assert.False(await watchEcho.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.OK, watch.GetStatus().StatusCode);
        await stopping;
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.5), $"stopping took {clock.Elapsed}");
        await app.DisposeAsync();
    }

    private static async Task<ServingStatus> NextAsync(AsyncServerStreamingCall<HealthCheckResponse> call, TimeSpan within)
    {
        Assert.True(await call.ResponseStream.MoveNext().WaitAsync(within), "the watch ended");
        return call.ResponseStream.Current.Status;
    }
}
