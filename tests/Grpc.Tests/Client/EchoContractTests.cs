using ChatServices.Grpc.Tests.Infrastructure;
using ChatServices.Grpc.Tests.Interop;
using Google.Protobuf;
using Grpc.Net.Client;

namespace ChatServices.Grpc.Tests.Client;

/// <summary>A running Echo server and channels to it.</summary>
public interface IEchoServerFixture
{
    GrpcChannel Channel { get; }

    /// <summary>Calls over <see cref="Channel"/> that gzip-compress their requests.</summary>
    CallInvoker GzipCallInvoker { get; }
}

/// <summary>
/// The grpc-dotnet client against a server of the Echo contract: ours on grpc-dotnet with the services' configuration
/// (<see cref="OwnServerContractTests"/>), python grpcio and grpc-js (Interop/PeerServerTests.cs). The same
/// behaviour is expected of all three.
/// </summary>
public abstract class EchoContractTests(IEchoServerFixture fixture)
{
    private readonly Echo.EchoClient _client = new(fixture.Channel);

    [Fact]
    public async Task Unary_call_succeeds()
    {
        using var call = _client.UnaryAsync(new EchoRequest { Message = "hello" });
        Assert.Equal("hello", (await call).Message);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Server_streaming_delivers_every_message_in_order()
    {
        using var call = _client.ServerStream(new EchoRequest { Count = 50 });
        var indexes = new List<int>();
        await foreach (var reply in call.ResponseStream.ReadAllAsync())
        {
            indexes.Add(reply.Index);
        }

        Assert.Equal(Enumerable.Range(0, 50), indexes);
    }

    [Fact]
    public async Task Client_streaming_is_answered_once_after_all_requests()
    {
        using var call = _client.ClientStream();
        foreach (var m in new[] { "a", "b", "c" })
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Message = m });
        }

        await call.RequestStream.CompleteAsync();
        var reply = await call;
        Assert.Equal("a,b,c", reply.Message);
        Assert.Equal(3, reply.Index);
    }

    [Fact]
    public async Task Duplex_replies_arrive_before_the_request_stream_ends()
    {
        using var call = _client.Duplex();
        for (var i = 0; i < 5; i++)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Message = "m" + i });
            Assert.True(await call.ResponseStream.MoveNext());
            Assert.Equal("m" + i, call.ResponseStream.Current.Message);
        }

        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Error_status_carries_its_message_and_trailing_metadata()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _client.UnaryAsync(new EchoRequest { FailCode = 5, FailMessage = "nöt found: 100% gone" }));
        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Equal("nöt found: 100% gone", ex.Status.Detail);
        Assert.Equal("trailer-value", ex.Trailers.GetValue("x-trailer"));
        Assert.Equal(new byte[] { 0, 1, 2, 250, 255 }, ex.Trailers.GetValueBytes("x-trailer-bin"));
    }

    [Fact]
    public async Task Error_after_streamed_messages_arrives_after_them()
    {
        using var call = _client.ServerStream(new EchoRequest { Count = 3, FailCode = (int)StatusCode.Aborted, FailMessage = "late" });
        var received = 0;
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
                received++;
            }
        });
        Assert.Equal(3, received);
        Assert.Equal(StatusCode.Aborted, ex.StatusCode);
        Assert.Equal("late", ex.Status.Detail);
    }

    [Fact]
    public async Task Metadata_and_binary_metadata_round_trip()
    {
        var headers = new Metadata { { "x-echo", "value-1" }, { "x-echo-bin", new byte[] { 1, 2, 3, 0, 255 } } };
        using var call = _client.UnaryAsync(new EchoRequest { Message = "md" }, headers);
        var responseHeaders = await call.ResponseHeadersAsync;
        await call;
        Assert.Equal("value-1", responseHeaders.GetValue("x-echo"));
        Assert.Equal(new byte[] { 1, 2, 3, 0, 255 }, responseHeaders.GetValueBytes("x-echo-bin"));
        Assert.Equal("value-1", call.GetTrailers().GetValue("x-echo-trailer"));
        Assert.Equal(new byte[] { 1, 2, 3, 0, 255 }, call.GetTrailers().GetValueBytes("x-echo-trailer-bin"));
    }

    [Fact]
    public async Task Deadline_reaches_the_server_as_grpc_timeout()
    {
        var reply = await _client.UnaryAsync(new EchoRequest { Message = "d" }, deadline: DateTime.UtcNow.AddSeconds(30));
        Assert.InRange(reply.DeadlineRemainingMs, 25_000, 31_000);
    }

    [Fact]
    public async Task Deadline_exceeded_fails_the_call_and_cancels_the_handler()
    {
        var id = Guid.NewGuid().ToString();
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _client.UnaryAsync(new EchoRequest { Message = id, DelayMs = 10_000 }, deadline: DateTime.UtcNow.AddSeconds(1)));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.Equal("yes", (await _client.UnaryAsync(new EchoRequest { Message = "was-cancelled:" + id })).Message);
    }

    [Fact]
    public async Task Client_cancellation_is_CANCELLED_and_reaches_the_handler()
    {
        var id = Guid.NewGuid().ToString();
        using var cts = new CancellationTokenSource();
        using var call = _client.ServerStream(new EchoRequest { Message = id, Count = 2, DelayMs = 10_000 }, cancellationToken: cts.Token);
        Assert.True(await call.ResponseStream.MoveNext());
        cts.Cancel();
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
        Assert.Equal("yes", (await _client.UnaryAsync(new EchoRequest { Message = "was-cancelled:" + id })).Message);
    }

    [Fact]
    public async Task Unknown_method_is_UNIMPLEMENTED()
    {
        var method = EchoMethods.Unary(Echo.Descriptor.FullName, "Nope");
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await fixture.Channel.CreateCallInvoker().AsyncUnaryCall(method, null, default, new EchoRequest()));
        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
    }

    [Fact]
    public async Task Gzip_requests_are_accepted()
    {
        var reply = await new Echo.EchoClient(fixture.GzipCallInvoker).UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[100_000]), ResponseSize = 100_000 });
        Assert.Equal(100_000, reply.PayloadSize);
        Assert.Equal(100_000, reply.Payload.Length);
    }

    [Fact]
    public async Task Messages_near_the_limit_pass_and_over_it_are_RESOURCE_EXHAUSTED()
    {
        const int limit = 4 * 1024 * 1024;
        var near = await _client.UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[limit - 100]), ResponseSize = limit - 100 });
        Assert.Equal(limit - 100, near.PayloadSize);
        Assert.Equal(limit - 100, near.Payload.Length);

        var overReply = await Assert.ThrowsAsync<RpcException>(async () => await _client.UnaryAsync(new EchoRequest { ResponseSize = limit + 100 }));
        Assert.Equal(StatusCode.ResourceExhausted, overReply.StatusCode);
        var overRequest = await Assert.ThrowsAsync<RpcException>(async () => await _client.UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[limit + 100]) }));
        Assert.Equal(StatusCode.ResourceExhausted, overRequest.StatusCode);
    }

    [Fact]
    public async Task Many_concurrent_calls_multiplex_on_the_channel()
    {
        var replies = await Task.WhenAll(Enumerable.Range(0, 100).Select(async i => (await _client.UnaryAsync(new EchoRequest { Message = i.ToString() })).Message));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => i.ToString()), replies);
    }
}

public sealed class OwnServerContractTests(TestServerFixture fixture) : EchoContractTests(fixture), IClassFixture<TestServerFixture>;
