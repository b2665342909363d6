using System.Diagnostics.Metrics;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// How every gRPC call of every service ends, in one place. A call whose client went away (cancelled, reset the
/// stream, or let its deadline pass) is normal: it ends CANCELLED, is logged at debug level without a stack trace and
/// is counted in <c>chatservices.rpc.server.abandoned_calls</c>, instead of surfacing as an unhandled handler
/// exception. A status a handler ends with on purpose (an <see cref="RpcException"/>: INVALID_ARGUMENT,
/// RESOURCE_EXHAUSTED…) is logged here at debug level without a stack trace; grpc-dotnet's own report of it, an
/// information entry with the stack trace, is filtered out by <see cref="GrpcServerDefaults"/>. Anything else a
/// handler throws is left to grpc-dotnet: logged as an error, UNKNOWN to the caller.
/// A call can also end before its handler (and so this interceptor) runs: the client resets the stream, or its
/// deadline of a few milliseconds passes, before the request message has been read. grpc-dotnet then ends it itself;
/// <see cref="AbandonedBeforeHandlerMiddleware"/> counts and logs those the same way.
/// </summary>
public sealed class CallOutcomeInterceptor(ILogger<CallOutcomeInterceptor> logger) : Interceptor
{
    private static readonly Meter Meter = new(Telemetry.SourcePrefix + "Rpc");
    private static readonly Counter<long> Abandoned = Meter.CreateCounter<long>(
        "chatservices.rpc.server.abandoned_calls", "{call}", "gRPC calls whose client went away (cancel, reset or deadline) before they completed.");

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation) =>
        ObserveAsync(() => continuation(request, context), context);

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        ObserveAsync(async () => { await continuation(request, responseStream, context); return true; }, context);

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        ObserveAsync(() => continuation(requestStream, context), context);

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        ObserveAsync(async () => { await continuation(requestStream, responseStream, context); return true; }, context);

    /// <summary>Runs one call's handler and decides how its ending is reported (every call kind alike).</summary>
    private async Task<T> ObserveAsync<T>(Func<Task<T>> handler, ServerCallContext context)
    {
        context.GetHttpContext().Items[AbandonedBeforeHandlerMiddleware.HandlerRan] = true;
        try
        {
            return await handler();
        }
        catch (Exception e) when (IsAbandoned(e, context))
        {
            throw Abandon(context);
        }
        catch (RpcException e)
        {
            LogStatus(context, e);
            throw;
        }
    }

    // The call's token fires when the client cancels or resets the stream, when the deadline passes, and when the
    // connection drops: whatever the handler then throws (OperationCanceledException, an IOException from a write, an
    // RpcException CANCELLED) is the consequence, not a fault.
    private static bool IsAbandoned(Exception e, ServerCallContext context) =>
        context.CancellationToken.IsCancellationRequested
        && e is OperationCanceledException or IOException or InvalidOperationException
            or RpcException { StatusCode: StatusCode.Cancelled or StatusCode.DeadlineExceeded };

    private void LogStatus(ServerCallContext context, RpcException e) =>
        logger.LogDebug("gRPC call {Method} ended with {Status}: {Detail}", context.Method, e.StatusCode, e.Status.Detail);

    private RpcException Abandon(ServerCallContext context)
    {
        var deadlinePassed = context.Deadline <= DateTime.UtcNow;
        Record(logger, context.Method, deadlinePassed);
        return deadlinePassed
            ? new RpcException(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"))
            : new RpcException(new Status(StatusCode.Cancelled, "The call was cancelled by the client."));
    }

    /// <summary>Counts and logs one call whose client went away (or whose deadline passed) before it completed.</summary>
    internal static void Record(ILogger logger, string method, bool deadlinePassed)
    {
        Abandoned.Add(1, new KeyValuePair<string, object?>("rpc.method", method),
            new KeyValuePair<string, object?>("reason", deadlinePassed ? "deadline" : "cancelled"));
        logger.LogDebug("gRPC call {Method} ended early: the client {Reason}", method,
            deadlinePassed ? "let its deadline pass" : "went away");
    }
}

/// <summary>
/// Counts and logs, as <see cref="CallOutcomeInterceptor"/> does, the gRPC calls that ended before their handler ran
/// because the client reset the stream or its deadline passed while the request message was still being read.
/// </summary>
public sealed class AbandonedBeforeHandlerMiddleware(RequestDelegate next, ILogger<CallOutcomeInterceptor> logger)
{
    internal static readonly object HandlerRan = new();

    public async Task InvokeAsync(HttpContext context)
    {
        await next(context);
        if (context.Items.ContainsKey(HandlerRan) || context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>() is not { } grpc) return;

        var status = GrpcStatus(context);
        var deadlinePassed = status == "4";
        if (deadlinePassed || status == "1" || context.RequestAborted.IsCancellationRequested)
        {
            CallOutcomeInterceptor.Record(logger, grpc.Method.FullName, deadlinePassed);
        }
    }

    // grpc-status is a trailer, or a header in a trailers-only response.
    private static string? GrpcStatus(HttpContext context)
    {
        var trailers = context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers;
        if (trailers is not null && trailers.TryGetValue("grpc-status", out var value)) return value;
        return context.Response.Headers.TryGetValue("grpc-status", out value) ? value.ToString() : null;
    }
}
