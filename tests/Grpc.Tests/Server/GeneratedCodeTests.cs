using ChatServices.Grpc.Server;
using ChatServices.Grpc.Tests.GeneratorCases;
using ChatServices.Grpc.Tests.Infrastructure;
using ChatServices.Grpc.Tests.Interop;
using Google.Protobuf.WellKnownTypes;

namespace ChatServices.Grpc.Tests.Server;

/// <summary>The service generator on the shapes in generator_cases.proto: that this file compiles is half the
/// proof; the calls below show the generated base, binder and client agree on the wire.</summary>
public sealed class GeneratedCodeTests
{
    [Fact]
    public async Task Generated_base_and_client_round_trip_nested_cross_package_and_well_known_types()
    {
        await using var server = await TestServer.StartAsync(map: app => app.MapGrpcService<ShapesService>());
        using var channel = server.CreateChannel();
        var client = new Shapes.ShapesClient(channel);

        Assert.IsType<Empty>(await client.NestedAsync(new Outer.Types.Inner { Value = "x" }));

        using var qualified = client.Qualified(new EchoRequest { Message = "q" });
        Assert.True(await qualified.ResponseStream.MoveNext());
        Assert.Equal("q", qualified.ResponseStream.Current.Message);

        using var relative = client.Relative();
        await relative.RequestStream.WriteAsync(new Outer { Inner = new Outer.Types.Inner { Value = "r" } });
        Assert.True(await relative.ResponseStream.MoveNext());
        Assert.Equal("r", relative.ResponseStream.Current.Value);
        await relative.RequestStream.CompleteAsync();
        Assert.False(await relative.ResponseStream.MoveNext());
    }

    [Fact]
    public async Task An_RPC_the_service_does_not_override_is_UNIMPLEMENTED()
    {
        await using var server = await TestServer.StartAsync(map: app => app.MapGrpcService<SecondService>());
        using var channel = server.CreateChannel();
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await new Second.SecondClient(channel).PingAsync(new Empty()));
        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
        Assert.Equal("Method chatservices.testing.generator.v1.Second/Ping is not implemented.", ex.Status.Detail);
    }

    [Fact]
    public void Generated_metadata_names_the_service_and_its_descriptor()
    {
        Assert.Equal("chatservices.testing.generator.v1.Shapes", Shapes.ServiceName);
        Assert.Equal(["Nested", "Qualified", "Relative"], Shapes.Descriptor.Methods.Select(m => m.Name));
        Assert.Equal("chatservices.testing.generator.v1.Second", Second.Descriptor.FullName);
    }

    private sealed class SecondService : Second.SecondBase;

    private sealed class ShapesService : Shapes.ShapesBase
    {
        public override Task<Empty> Nested(Outer.Types.Inner request, ServerCallContext context) => Task.FromResult(new Empty());

        public override async Task Qualified(EchoRequest request, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context) =>
            await responseStream.WriteAsync(new EchoReply { Message = request.Message });

        public override async Task Relative(IAsyncStreamReader<Outer> requestStream, IServerStreamWriter<Outer.Types.Inner> responseStream, ServerCallContext context)
        {
            await foreach (var outer in requestStream.ReadAllAsync())
            {
                await responseStream.WriteAsync(outer.Inner);
            }
        }
    }
}
