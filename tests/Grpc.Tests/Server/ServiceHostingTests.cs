using System.Net;
using ChatServices.Grpc.Client;
using ChatServices.Grpc.Server;
using ChatServices.ServiceDefaults;
using Grpc.Health.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace ChatServices.Grpc.Tests.Server;

/// <summary>The hosting the services' Program.cs uses (AddServiceDefaults, AddGrpcServer,
/// MapGrpcHealthAndReflection): gRPC health follows readiness, as /readyz does.</summary>
public sealed class ServiceHostingTests
{
    [Fact]
    public async Task Grpc_health_is_NOT_SERVING_until_the_service_is_ready_then_SERVING()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.AddServiceDefaults();
        builder.AddGrpcServer();
        await using var app = builder.Build();
        app.MapDefaultEndpoints();
        app.MapGrpcHealthAndReflection();
        await app.StartAsync();

        using var channel = GrpcChannel.ForAddress(app.Urls.First());
        var health = new Health.HealthClient(channel);
        Assert.Equal(ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Equal(ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest { Service = "grpc.health.v1.Health" })).Status);

        app.Services.GetRequiredService<Readiness>().MarkReady();
        Assert.Equal(ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);

        app.Services.GetRequiredService<Readiness>().MarkNotReady("draining");
        Assert.Equal(ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest())).Status);
        await app.StopAsync();
    }
}
