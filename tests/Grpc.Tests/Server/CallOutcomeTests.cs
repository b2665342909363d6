using System.Net;
using ChatServices.Grpc.Tests.Infrastructure;
using ChatServices.Grpc.Tests.Interop;
using ChatServices.ServiceDefaults;
using ChatServices.Tests.Shared;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChatServices.Grpc.Tests.Server;

/// <summary>How calls end as the services log and count them (CallOutcomeInterceptor, installed by
/// AddGrpcServiceDefaults): a client that goes away mid-stream is normal — counted, logged at debug without a stack
/// trace, never a warning or an error — and a status a handler ends with on purpose is not logged with a stack
/// trace either. Runs alone (no other test class in parallel): the counter it reads is process-wide, and another
/// class's cancelled calls would be counted with its own.</summary>
[CollectionDefinition(nameof(CallOutcomeTests), DisableParallelization = true)]
public sealed class CallOutcomeCollection;

[Collection(nameof(CallOutcomeTests))]
public sealed class CallOutcomeTests : IAsyncLifetime
{
    private readonly CapturedLogs _logs = new();
    private WebApplication _app = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.AddServiceDefaults();
        builder.AddGrpcServiceDefaults();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(_logs);
        builder.Services.AddSingleton<CallLog>();
        _app = builder.Build();
        _app.MapGrpcService<EchoService>();
        _app.MapGrpcServiceDefaults();
        await _app.StartAsync();
        _channel = GrpcChannel.ForAddress(_app.Urls.First());
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task A_client_that_goes_away_mid_stream_is_counted_and_logged_quietly()
    {
        using var abandoned = new CounterListener("chatservices.rpc.server.abandoned_calls");
        var client = new Echo.EchoClient(_channel);
        var id = "leaves-" + Guid.NewGuid();
        using (var call = client.ServerStream(new EchoRequest { Message = id, Count = 100, DelayMs = 200 }))
        {
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        } // disposing an unfinished call resets its stream

        Assert.True(await _app.Services.GetRequiredService<CallLog>().WaitForCancellationAsync(id, TimeSpan.FromSeconds(10)));
        Assert.True(SpinWait.SpinUntil(() => abandoned.Total("reason", "cancelled") == 1, TimeSpan.FromSeconds(10)));
        // The count comes before the log line: wait for both.
        Assert.True(SpinWait.SpinUntil(() => _logs.Entries.Any(e => e.Level == LogLevel.Debug && e.Message.Contains("/chatservices.testing.v1.Echo/ServerStream ended early")),
            TimeSpan.FromSeconds(10)), "not logged: " + _logs);
        Assert.DoesNotContain(_logs.Entries, e => e.Level >= LogLevel.Warning || e.Exception is not null);
    }

    /// <summary>
    /// A client that resets its stream, or whose few-millisecond deadline passes, before its request message has
    /// arrived: the call ends before its handler (and so any interceptor) runs, inside grpc-dotnet. Sent with a raw
    /// HTTP/2 client, because a gRPC client writes the message with the headers.
    /// </summary>
    [Theory]
    [InlineData("reset")]
    [InlineData("reset-mid-message")]
    [InlineData("deadline")]
    public async Task A_client_that_goes_away_before_its_request_is_read_is_counted_and_logged_quietly(string how)
    {
        using var abandoned = new CounterListener("chatservices.rpc.server.abandoned_calls");
        using var http = new HttpClient { BaseAddress = new Uri(_app.Urls.First()) };
        var body = new TaskCompletionSource();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/chatservices.testing.v1.Echo/Unary")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new NeverEndingContent(body.Task),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (how == "deadline") request.Headers.TryAddWithoutValidation("grpc-timeout", "5m");

        var reset = how.StartsWith("reset", StringComparison.Ordinal);
        if (how == "reset-mid-message") request.Content = new NeverEndingContent(body.Task, [0, 0, 0, 0, 100, 10, 98]); // 2 of 100 bytes
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        using var cancel = new CancellationTokenSource(reset ? TimeSpan.FromMilliseconds(300) : TimeSpan.FromSeconds(10));
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
            // A trailers-only response: the status comes in the headers, and the server then resets the unread request.
            Assert.Equal("4", response.Headers.GetValues("grpc-status").Single()); // DEADLINE_EXCEEDED
        }
        catch (OperationCanceledException) when (reset)
        {
            // The client reset the stream (RST_STREAM CANCEL) before it had sent its message.
        }
        finally
        {
            body.TrySetResult();
        }

        var reason = reset ? "cancelled" : "deadline";
        Assert.True(SpinWait.SpinUntil(() => abandoned.Total("reason", reason) == 1, TimeSpan.FromSeconds(10)),
            $"counted {abandoned.Total("reason", reason)} times, not once; logged: " + _logs);
        Assert.True(SpinWait.SpinUntil(() => _logs.Entries.Any(e => e.Level == LogLevel.Debug && e.Message.Contains("/chatservices.testing.v1.Echo/Unary ended early")),
            TimeSpan.FromSeconds(10)), "not logged: " + _logs);
        // Kestrel notes the stream it resets at debug level, with the exception; nothing above debug carries one.
        Assert.DoesNotContain(_logs.Entries, e => e.Level >= LogLevel.Warning || (e.Level > LogLevel.Debug && e.Exception is not null));
    }

    /// <summary>A request body that sends <paramref name="start"/> and then nothing until <paramref name="release"/> completes.</summary>
    private sealed class NeverEndingContent(Task release, byte[]? start = null) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            if (start is not null) await stream.WriteAsync(start);
            await stream.FlushAsync();
            await release;
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    [Fact]
    public async Task A_status_a_handler_ends_with_on_purpose_is_logged_without_a_stack_trace()
    {
        var client = new Echo.EchoClient(_channel);
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.UnaryAsync(new EchoRequest { Message = "bad", FailCode = (int)StatusCode.InvalidArgument, FailMessage = "'message' is bad." }));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.True(SpinWait.SpinUntil(() => _logs.Entries.Any(e => e.Level == LogLevel.Debug && e.Message.Contains("InvalidArgument")),
            TimeSpan.FromSeconds(10)), "not logged: " + _logs);
        Assert.DoesNotContain(_logs.Entries, e => e.Exception is not null);
    }
}
