using ChatServices.Grpc.Client;
using ChatServices.Grpc.Tests.Infrastructure;
using ChatServices.Grpc.Tests.Interop;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServices.Grpc.Tests.Client;

/// <summary>Our client against our server over real HTTP/2 on loopback, beyond the shared Echo contract
/// (<see cref="EchoContractTests"/>): handler exceptions, expired deadlines, disposal, server abort, TLS,
/// several endpoints, an unreachable endpoint.</summary>
public sealed class CallKindTests(TestServerFixture fixture) : IClassFixture<TestServerFixture>
{
    private readonly Echo.EchoClient _client = new(fixture.Channel);

    [Fact]
    public async Task Handler_exception_becomes_INTERNAL_without_its_text()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _client.UnaryAsync(new EchoRequest { ThrowException = true }));
        Assert.Equal(StatusCode.Internal, ex.StatusCode);
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
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _client.UnaryAsync(new EchoRequest { Message = "late" }, deadline: DateTime.UtcNow.AddSeconds(-1)));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
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
    public async Task Unknown_service_is_UNIMPLEMENTED_and_named()
    {
        var unknownService = new Method<EchoRequest, EchoReply>(MethodType.Unary, "no.such.Service", "Call", EchoRequest.Parser, EchoReply.Parser);
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await fixture.Channel.CreateCallInvoker().AsyncUnaryCall(unknownService, new EchoRequest(), default));
        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
        Assert.Contains("no.such.Service", ex.Status.Detail);
    }

    [Fact]
    public async Task Calls_over_TLS_work()
    {
        await using var server = await TestServer.StartAsync(tls: true);
        using var channel = server.CreateChannel();
        Assert.Equal("https", channel.Endpoints[0].Scheme);
        var reply = await new Echo.EchoClient(channel).UnaryAsync(new EchoRequest { Message = "secure" });
        Assert.Equal("secure", reply.Message);
    }

    [Fact]
    public async Task A_channel_over_several_endpoints_spreads_calls_round_robin()
    {
        await using var second = await TestServer.StartAsync();
        var secondLog = second.Services.GetRequiredService<CallLog>();
        using var channel = GrpcChannel.ForAddresses([fixture.Server.Address, second.Address]);
        var client = new Echo.EchoClient(channel);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("rr", (await client.UnaryAsync(new EchoRequest { Message = "rr" })).Message);
        }

        Assert.Equal(5, secondLog.UnaryCalls);
    }

    [Fact]
    public async Task Unreachable_endpoint_is_UNAVAILABLE()
    {
        using var channel = GrpcChannel.ForAddress("http://127.0.0.1:1");
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await new Echo.EchoClient(channel).UnaryAsync(new EchoRequest()));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }
}
