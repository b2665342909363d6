using System.Collections.Concurrent;
using ChatServices.Grpc.Tests.Interop;
using Google.Protobuf;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Http.Features;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace ChatServices.Grpc.Tests.Infrastructure;

/// <summary>
/// The C# implementation of <c>chatservices.testing.v1.Echo</c> (see interop.proto for what each knob does).
/// It records which calls saw their cancellation token fire, so tests can prove cancellation reached the handler.
/// Two test hooks on Unary: message "set-health:{service}:{STATUS}" changes a health status;
/// "was-cancelled:{id}" answers whether the call whose message was {id} saw its token fire.
/// </summary>
public sealed class EchoService(CallLog log, HealthServiceImpl health) : Echo.EchoBase
{
    public override async Task<EchoReply> Unary(EchoRequest request, ServerCallContext context)
    {
        if (request.Message.StartsWith("set-health:", StringComparison.Ordinal))
        {
            var parts = request.Message.Split(':');
            health.SetStatus(parts[1], Enum.Parse<ServingStatus>(parts[2].Replace("_", ""), ignoreCase: true));
            return new EchoReply { Message = "ok" };
        }

        if (request.Message.StartsWith("was-cancelled:", StringComparison.Ordinal))
        {
            var id = request.Message["was-cancelled:".Length..];
            var seen = await log.WaitForCancellationAsync(id, TimeSpan.FromSeconds(5));
            return new EchoReply { Message = seen ? "yes" : "no" };
        }

        log.CountUnaryCall();
        await EchoHeadersAsync(context);
        await BehaveAsync(request, context);
        return Reply(request, 0, context);
    }

    public override async Task ServerStream(EchoRequest request, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
    {
        await EchoHeadersAsync(context);
        for (var i = 0; i < request.Count; i++)
        {
            if (i > 0 && request.DelayMs > 0)
            {
                await DelayAsync(request, context);
            }

            await responseStream.WriteAsync(Reply(request, i, context));
        }

        if (request.Count == 0 && request.DelayMs > 0)
        {
            await DelayAsync(request, context);
        }

        Fail(request, context);
    }

    public override async Task<EchoReply> ClientStream(IAsyncStreamReader<EchoRequest> requestStream, ServerCallContext context)
    {
        var messages = new List<string>();
        var payload = 0;
        await foreach (var request in requestStream.ReadAllAsync())
        {
            messages.Add(request.Message);
            payload += request.Payload.Length;
            Fail(request, context);
        }

        return new EchoReply { Message = string.Join(",", messages), Index = messages.Count, PayloadSize = payload };
    }

    public override async Task Duplex(IAsyncStreamReader<EchoRequest> requestStream, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
    {
        var index = 0;
        await foreach (var request in requestStream.ReadAllAsync())
        {
            await BehaveAsync(request, context);
            await responseStream.WriteAsync(Reply(request, index++, context));
        }
    }

    private async Task BehaveAsync(EchoRequest request, ServerCallContext context)
    {
        if (request.DelayMs > 0)
        {
            await DelayAsync(request, context);
        }

        if (request.ThrowException)
        {
            throw new InvalidOperationException("secret internal detail: connection string Password=hunter2");
        }

        if (request.Abort)
        {
            // RST_STREAM with CANCEL (0x8), which a client reports as CANCELLED.
            context.GetHttpContext().Features.GetRequiredFeature<IHttpResetFeature>().Reset(0x8);
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        }

        Fail(request, context);
    }

    private async Task DelayAsync(EchoRequest request, ServerCallContext context)
    {
        try
        {
            await Task.Delay(request.DelayMs, request.IgnoreCancellation ? CancellationToken.None : context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            log.RecordCancellation(request.Message);
            throw;
        }
    }

    private static void Fail(EchoRequest request, ServerCallContext context)
    {
        if (request.FailCode != 0)
        {
            var trailers = new Metadata { { "x-trailer", "trailer-value" }, { "x-trailer-bin", new byte[] { 0, 1, 2, 250, 255 } } };
            throw new RpcException(new Status((StatusCode)request.FailCode, request.FailMessage), trailers);
        }
    }

    private static async Task EchoHeadersAsync(ServerCallContext context)
    {
        var echo = context.RequestHeaders.Get("x-echo");
        var echoBin = context.RequestHeaders.Get("x-echo-bin");
        if (echo is null && echoBin is null)
        {
            return;
        }

        var headers = new Metadata();
        if (echo is not null)
        {
            headers.Add("x-echo", echo.Value);
            context.ResponseTrailers.Add("x-echo-trailer", echo.Value);
        }

        if (echoBin is not null)
        {
            headers.Add("x-echo-bin", echoBin.ValueBytes);
            context.ResponseTrailers.Add("x-echo-trailer-bin", echoBin.ValueBytes);
        }

        await context.WriteResponseHeadersAsync(headers);
    }

    private static EchoReply Reply(EchoRequest request, int index, ServerCallContext context) => new()
    {
        Message = request.Message,
        Index = index,
        PayloadSize = request.Payload.Length,
        Payload = request.ResponseSize > 0 ? ByteString.CopyFrom(new byte[request.ResponseSize]) : ByteString.Empty,
        DeadlineRemainingMs = context.Deadline == DateTime.MaxValue ? -1 : (long)(context.Deadline - DateTime.UtcNow).TotalMilliseconds,
        RequestEncoding = context.GetHttpContext().Request.Headers["grpc-encoding"].ToString(),
    };
}

/// <summary>Which calls' handlers observed cancellation, by request message.</summary>
public sealed class CallLog
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _cancelled = new();
    private int _unaryCalls;

    public int UnaryCalls => Volatile.Read(ref _unaryCalls);

    public void CountUnaryCall() => Interlocked.Increment(ref _unaryCalls);

    public void RecordCancellation(string id) => Entry(id).TrySetResult();

    public async Task<bool> WaitForCancellationAsync(string id, TimeSpan timeout)
    {
        try
        {
            await Entry(id).Task.WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private TaskCompletionSource Entry(string id) => _cancelled.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
}
