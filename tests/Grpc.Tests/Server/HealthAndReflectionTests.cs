using ChatServices.Grpc.Tests.Infrastructure;
using ChatServices.Grpc.Tests.Interop;
using Google.Protobuf.Reflection;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Grpc.Reflection.V1Alpha;
using Microsoft.Extensions.DependencyInjection;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace ChatServices.Grpc.Tests.Server;

/// <summary>grpc.health.v1 (Grpc.AspNetCore.HealthChecks wired by AddGrpcServiceDefaults) and server reflection
/// v1alpha and v1 (Grpc.AspNetCore.Server.Reflection) on the test server, which is ready.</summary>
public sealed class HealthAndReflectionTests(TestServerFixture fixture) : IClassFixture<TestServerFixture>
{
    private readonly Health.HealthClient _health = new(fixture.Channel);

    [Fact]
    public async Task Check_reports_the_server_and_each_mapped_service_as_SERVING()
    {
        Assert.Equal(ServingStatus.Serving, (await _health.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Equal(ServingStatus.Serving, (await _health.CheckAsync(new HealthCheckRequest { Service = Echo.Descriptor.FullName })).Status);
    }

    [Fact]
    public async Task Check_of_an_unknown_service_is_NOT_FOUND()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _health.CheckAsync(new HealthCheckRequest { Service = "no.such.Service" }));
        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
    }

    [Fact]
    public async Task Watch_streams_the_current_status_then_every_change()
    {
        var registry = fixture.Server.Services.GetRequiredService<HealthServiceImpl>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var call = _health.Watch(new HealthCheckRequest { Service = "watched.Service" }, cancellationToken: cts.Token);
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Equal(ServingStatus.ServiceUnknown, call.ResponseStream.Current.Status);

        registry.SetStatus("watched.Service", ServingStatus.Serving);
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Equal(ServingStatus.Serving, call.ResponseStream.Current.Status);

        registry.SetStatus("watched.Service", ServingStatus.NotServing);
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Equal(ServingStatus.NotServing, call.ResponseStream.Current.Status);
        Assert.Equal(ServingStatus.NotServing, (await _health.CheckAsync(new HealthCheckRequest { Service = "watched.Service" })).Status);
    }

    [Fact]
    public async Task Shutdown_turns_watches_NOT_SERVING_and_ends_them_without_holding_up_the_stop()
    {
        var server = await TestServer.StartAsync();
        using var channel = server.CreateChannel();
        using var call = new Health.HealthClient(channel).Watch(new HealthCheckRequest());
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Equal(ServingStatus.Serving, call.ResponseStream.Current.Status);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var stopping = server.DisposeAsync().AsTask();
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Equal(ServingStatus.NotServing, call.ResponseStream.Current.Status);
        Assert.False(await call.ResponseStream.MoveNext());
        await stopping;
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.5), $"stopping took {clock.Elapsed}");
    }

    [Fact]
    public async Task Reflection_lists_services_and_describes_a_service_with_its_methods()
    {
        var client = new ServerReflection.ServerReflectionClient(fixture.Channel);
        using var call = client.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        Assert.True(await call.ResponseStream.MoveNext());
        var names = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains(Echo.Descriptor.FullName, names);
        Assert.Contains("grpc.health.v1.Health", names);
        Assert.Contains("grpc.reflection.v1alpha.ServerReflection", names);
        Assert.Contains("grpc.reflection.v1.ServerReflection", names);

        await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = Echo.Descriptor.FullName + ".Duplex" });
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Null(call.ResponseStream.Current.ErrorResponse);
        var file = FileDescriptorProto.Parser.ParseFrom(call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto[0]);
        Assert.Equal("interop.proto", file.Name);
        var service = Assert.Single(file.Service);
        Assert.Equal(["Unary", "ServerStream", "ClientStream", "Duplex"], service.Method.Select(m => m.Name));

        await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = "no.such.Symbol" });
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Equal((int)StatusCode.NotFound, call.ResponseStream.Current.ErrorResponse?.ErrorCode);
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext());
    }

    [Fact]
    public async Task Reflection_v1_answers_like_v1alpha()
    {
        var client = new global::Grpc.Reflection.V1.ServerReflection.ServerReflectionClient(fixture.Channel);
        using var call = client.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new global::Grpc.Reflection.V1.ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Contains(Echo.Descriptor.FullName, call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name));
    }
}
