using ChatServices.Grpc.Tests.Infrastructure;
using ChatServices.Grpc.Tests.Interop;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServices.Grpc.Tests.Client;

/// <summary>The grpc-dotnet client against our server over real HTTP/2 on loopback, beyond the shared Echo contract
/// (<see cref="EchoContractTests"/>): handler exceptions, expired deadlines, disposal, server abort, TLS, an
/// unreachable endpoint.</summary>
public sealed class CallKindTests(TestServerFixture fixture) : IClassFixture<TestServerFixture>
{
    private readonly Echo.EchoClient _client = new(fixture.Channel);

    /// <summary>UNKNOWN is what the gRPC status-code table prescribes for "application throws an exception"
    /// (grpc-dotnet, grpc-js and grpcio all answer it); EnableDetailedErrors=false keeps the exception's text out.</summary>
    [Fact]
    public async Task Handler_exception_becomes_UNKNOWN_without_its_text()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _client.UnaryAsync(new EchoRequest { ThrowException = true }));
        Assert.Equal(StatusCode.Unknown, ex.StatusCode);
        Assert.DoesNotContain("hunter2", ex.Status.Detail);
        Assert.DoesNotContain("secret", ex.Status.Detail);
    }

    [Fact]
    public async Task Without_a_deadline_the_server_sees_none()
    {
        var none = await _client.UnaryAsync(new EchoRequest { Message = "d" });
        Assert.Equal(-1, none.DeadlineRemainingMs);
    }

    [Fact]
    public async Task Deadline_already_passed_fails_without_a_request()
    {
        var before = fixture.Server.Services.GetRequiredService<CallLog>().UnaryCalls;
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _client.UnaryAsync(new EchoRequest { Message = "late" }, deadline: DateTime.UtcNow.AddSeconds(-1)));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.Equal(before, fixture.Server.Services.GetRequiredService<CallLog>().UnaryCalls);
    }

    [Fact]
    public async Task Disposing_an_unfinished_call_cancels_it_on_the_server()
    {
        var id = Guid.NewGuid().ToString();
        var call = _client.ServerStream(new EchoRequest { Message = id, Count = 2, DelayMs = 10_000 });
        Assert.True(await call.ResponseStream.MoveNext());
        call.Dispose();
        Assert.Equal("yes", (await _client.UnaryAsync(new EchoRequest { Message = "was-cancelled:" + id })).Message);
    }

    [Fact]
    public async Task Server_abort_reaches_the_client_as_CANCELLED()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _client.UnaryAsync(new EchoRequest { Abort = true }));
        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
    }

    [Fact]
    public async Task Unknown_service_is_UNIMPLEMENTED()
    {
        var unknownService = EchoMethods.Unary("no.such.Service", "Call");
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await fixture.Channel.CreateCallInvoker().AsyncUnaryCall(unknownService, null, default, new EchoRequest()));
        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
    }

    [Fact]
    public async Task Calls_over_TLS_work()
    {
        await using var server = await TestServer.StartAsync(tls: true);
        Assert.Equal("https", server.Address.Scheme);
        using var channel = server.CreateChannel();
        var reply = await new Echo.EchoClient(channel).UnaryAsync(new EchoRequest { Message = "secure" });
        Assert.Equal("secure", reply.Message);
    }

    [Fact]
    public async Task Unreachable_endpoint_is_UNAVAILABLE()
    {
        using var channel = GrpcChannel.ForAddress("http://127.0.0.1:1");
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await new Echo.EchoClient(channel).UnaryAsync(new EchoRequest()));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }
}
