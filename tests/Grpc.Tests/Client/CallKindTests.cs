using ChatServices.Grpc.Client;
using ChatServices.Grpc.Tests.Infrastructure;
using ChatServices.Grpc.Tests.Interop;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServices.Grpc.Tests.Client;

/// <summary>Our client against our server over real HTTP/2 on loopback: the four call kinds, status and
/// trailers, metadata, deadlines, cancellation, compression and message limits.</summary>
public sealed class CallKindTests(TestServerFixture fixture) : IClassFixture<TestServerFixture>
{
    private readonly Echo.EchoClient _client = new(fixture.Channel);

    [Fact]
    public async Task Unary_call_returns_the_reply_and_OK()
    {
        using var call = _client.UnaryAsync(new EchoRequest { Message = "hello" });
        var reply = await call;
        Assert.Equal("hello", reply.Message);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Server_streaming_call_yields_every_message_in_order()
    {
        using var call = _client.ServerStream(new EchoRequest { Message = "s", Count = 50 });
        var indexes = new List<int>();
        await foreach (var reply in call.ResponseStream.ReadAllAsync())
        {
            indexes.Add(reply.Index);
        }

        Assert.Equal(Enumerable.Range(0, 50), indexes);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Client_streaming_call_sees_every_request_then_answers_once()
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
    public async Task Duplex_call_interleaves_requests_and_replies()
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
    public async Task Handler_status_reaches_the_client_with_its_message_and_trailers()
    {
        var message = "nöt found: 100% gone\r\n";
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _client.UnaryAsync(new EchoRequest { FailCode = 5, FailMessage = message }));
        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Equal(message, ex.Status.Detail);
        Assert.Equal("trailer-value", ex.Trailers.GetValue("x-trailer"));
        Assert.Equal(new byte[] { 0, 1, 2, 250, 255 }, ex.Trailers.GetValueBytes("x-trailer-bin"));
    }

    [Fact]
    public async Task Error_after_streamed_messages_arrives_in_trailers()
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
        Assert.Equal("trailer-value", call.GetTrailers().GetValue("x-trailer"));
    }

    [Fact]
    public async Task Handler_exception_becomes_INTERNAL_without_its_text()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _client.UnaryAsync(new EchoRequest { ThrowException = true }));
        Assert.Equal(StatusCode.Internal, ex.StatusCode);
        Assert.DoesNotContain("hunter2", ex.Status.Detail);
        Assert.DoesNotContain("secret", ex.Status.Detail);
    }

    [Fact]
    public async Task Request_metadata_and_binary_metadata_round_trip_in_headers_and_trailers()
    {
        var headers = new Metadata().Add("x-echo", "value-1").Add("x-echo-bin", [1, 2, 3, 0, 255]);
        using var call = _client.UnaryAsync(new EchoRequest { Message = "m" }, headers);
        var responseHeaders = await call.ResponseHeadersAsync;
        await call;
        Assert.Equal("value-1", responseHeaders.GetValue("x-echo"));
        Assert.Equal(new byte[] { 1, 2, 3, 0, 255 }, responseHeaders.GetValueBytes("x-echo-bin"));
        Assert.Equal("value-1", call.GetTrailers().GetValue("x-echo-trailer"));
        Assert.Equal(new byte[] { 1, 2, 3, 0, 255 }, call.GetTrailers().GetValueBytes("x-echo-trailer-bin"));
    }

    [Fact]
    public async Task Deadline_is_sent_to_the_server_as_grpc_timeout()
    {
        var reply = await _client.UnaryAsync(new EchoRequest { Message = "d" }, deadline: DateTime.UtcNow.AddSeconds(30));
        Assert.InRange(reply.DeadlineRemainingMs, 25_000, 30_000);
        var none = await _client.UnaryAsync(new EchoRequest { Message = "d" });
        Assert.Equal(-1, none.DeadlineRemainingMs);
    }

    [Fact]
    public async Task Deadline_exceeded_fails_the_call_and_cancels_the_handler()
    {
        var id = Guid.NewGuid().ToString();
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _client.UnaryAsync(new EchoRequest { Message = id, DelayMs = 10_000 }, deadline: DateTime.UtcNow.AddMilliseconds(200)));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.Equal("yes", (await _client.UnaryAsync(new EchoRequest { Message = "was-cancelled:" + id })).Message);
    }

    [Fact]
    public async Task Deadline_already_passed_fails_without_a_request()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _client.UnaryAsync(new EchoRequest { Message = "late" }, deadline: DateTime.UtcNow.AddSeconds(-1)));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
    }

    [Fact]
    public async Task Client_cancellation_fails_the_call_with_CANCELLED_and_fires_the_handler_token()
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
    public async Task Unknown_method_and_unknown_service_are_UNIMPLEMENTED()
    {
        var invoker = fixture.Channel.CreateCallInvoker();
        var unknownMethod = new Method<EchoRequest, EchoReply>(MethodType.Unary, Echo.ServiceName, "Nope", EchoRequest.Parser, EchoReply.Parser);
        var unknownService = new Method<EchoRequest, EchoReply>(MethodType.Unary, "no.such.Service", "Call", EchoRequest.Parser, EchoReply.Parser);
        var a = await Assert.ThrowsAsync<RpcException>(async () => await invoker.AsyncUnaryCall(unknownMethod, new EchoRequest(), default));
        var b = await Assert.ThrowsAsync<RpcException>(async () => await invoker.AsyncUnaryCall(unknownService, new EchoRequest(), default));
        Assert.Equal(StatusCode.Unimplemented, a.StatusCode);
        Assert.Equal(StatusCode.Unimplemented, b.StatusCode);
        Assert.Contains("no.such.Service", b.Status.Detail);
    }

    [Fact]
    public async Task Messages_up_to_the_limit_pass_and_larger_ones_are_RESOURCE_EXHAUSTED()
    {
        const int limit = 4 * 1024 * 1024;
        var near = await _client.UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[limit - 64]), ResponseSize = limit - 64 });
        Assert.Equal(limit - 64, near.PayloadSize);
        Assert.Equal(limit - 64, near.Payload.Length);

        var tooBigRequest = await Assert.ThrowsAsync<RpcException>(async () =>
            await _client.UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[limit + 1]) }));
        Assert.Equal(StatusCode.ResourceExhausted, tooBigRequest.StatusCode);

        var tooBigReply = await Assert.ThrowsAsync<RpcException>(async () =>
            await _client.UnaryAsync(new EchoRequest { ResponseSize = limit + 1 }));
        Assert.Equal(StatusCode.ResourceExhausted, tooBigReply.StatusCode);
    }

    [Fact]
    public async Task Gzip_requests_are_accepted_and_answered_with_gzip()
    {
        using var channel = fixture.Server.CreateChannel(new GrpcChannelOptions { RequestCompression = "gzip" });
        var client = new Echo.EchoClient(channel);
        var payload = ByteString.CopyFrom(new byte[1 << 20]);
        using var call = client.UnaryAsync(new EchoRequest { Message = "zip", Payload = payload, ResponseSize = 1 << 20 });
        var reply = await call;
        Assert.Equal(1 << 20, reply.PayloadSize);
        Assert.Equal(1 << 20, reply.Payload.Length);
    }

    [Fact]
    public async Task Many_concurrent_calls_share_the_channel()
    {
        var calls = Enumerable.Range(0, 200).Select(async i => (await _client.UnaryAsync(new EchoRequest { Message = i.ToString() })).Message);
        var replies = await Task.WhenAll(calls);
        Assert.Equal(Enumerable.Range(0, 200).Select(i => i.ToString()), replies);
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
