using ChatServices.Grpc.Protocol;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.Logging;

namespace ChatServices.Grpc.Server;

/// <summary>
/// Runs one gRPC call on an HTTP/2 request: validates it, builds the <see cref="ServerCallContext"/>, invokes
/// the service method, and ends the response with the status in trailers (or headers only, "Trailers-Only",
/// when nothing was sent yet). Every failure becomes a gRPC status; none escapes to ASP.NET Core.
/// </summary>
internal abstract class ServerCallHandler(string methodFullName, ServiceActivator activator, GrpcServerOptions options, ILogger logger)
{
    protected ServiceActivator Activator => activator;

    public async Task HandleCallAsync(HttpContext http)
    {
        if (!TryValidateRequest(http, out var timeout))
        {
            return;
        }

        var context = new ServerCallContext(http, methodFullName, options, timeout, logger);
        object? service = null;
        try
        {
            service = activator.Create(http);
            await InvokeAsync(service, context).ConfigureAwait(false);
            var status = context.DeadlineExceeded ? ServerCallContext.DeadlineExceededStatus : context.Status;
            await context.CompleteAsync(status, null).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            await HandleErrorAsync(http, context, ex).ConfigureAwait(false);
        }
        finally
        {
            if (service is not null)
            {
                await activator.ReleaseAsync(service).ConfigureAwait(false);
            }

            // After this, the deadline can no longer touch the response: the request delegate may return.
            await context.EndAsync().ConfigureAwait(false);
        }
    }

    protected abstract Task InvokeAsync(object service, ServerCallContext context);

    /// <summary>Reads the single request of a unary or server-streaming call: exactly one message.</summary>
    protected static async Task<TRequest> ReadSingleRequestAsync<TRequest>(ServerCallContext context, MessageParser<TRequest> parser)
        where TRequest : class, IMessage<TRequest>
    {
        var request = await context.Reader.ReadAsync(parser, context.CancellationToken).ConfigureAwait(false)
            ?? throw new RpcException(new Status(StatusCode.Internal, "The request stream ended without a message."));
        if (await context.Reader.ReadAsync(parser, context.CancellationToken).ConfigureAwait(false) is not null)
        {
            throw new RpcException(new Status(StatusCode.Internal, "More than one request message for a method that takes one."));
        }

        return request;
    }

    /// <summary>The one response of a unary or client-streaming call, unless the handler set a failing status
    /// or the deadline passed. Not flushed: Kestrel sends headers, message and trailers together when the call ends.</summary>
    protected static ValueTask WriteSingleResponseAsync<TResponse>(ServerCallContext context, TResponse response)
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(response);
        return context.Status.StatusCode == StatusCode.OK && !context.DeadlineExceeded
            ? context.WriteMessageAsync(response, flush: false, context.CancellationToken)
            : ValueTask.CompletedTask;
    }

    private bool TryValidateRequest(HttpContext http, out TimeSpan? timeout)
    {
        timeout = null;
        var request = http.Request;
        if (!HttpProtocol.IsHttp2(request.Protocol) && !HttpProtocol.IsHttp3(request.Protocol))
        {
            RejectHttp(http, StatusCodes.Status426UpgradeRequired, $"Request protocol '{request.Protocol}' is not supported: gRPC needs HTTP/2.");
            http.Response.Headers.Upgrade = "h2c";
            return false;
        }

        if (!GrpcProtocol.IsGrpcContentType(request.ContentType))
        {
            RejectHttp(http, StatusCodes.Status415UnsupportedMediaType, $"Content-Type '{request.ContentType}' is not supported.");
            return false;
        }

        var encoding = request.Headers.GetSingle(GrpcProtocol.EncodingHeader);
        if (!MessageCompression.IsSupported(encoding))
        {
            http.Response.ContentType = GrpcProtocol.ContentType;
            http.Response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.SupportedEncodings;
            ServerCallContext.WriteStatusHeaders(http.Response.Headers, new Status(StatusCode.Unimplemented, $"Unsupported grpc-encoding '{encoding}'."));
            return false;
        }

        if (GrpcTimeout.TryParse(request.Headers.GetSingle(GrpcProtocol.TimeoutHeader), out var parsed))
        {
            timeout = parsed;
        }

        // A streaming call may legitimately send nothing for minutes, and message size is limited per message
        // below: Kestrel's per-request body rate and size limits do not apply to gRPC.
        if (http.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate)
        {
            rate.MinDataRate = null;
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = null;
        }

        return true;
    }

    private static void RejectHttp(HttpContext http, int httpStatus, string message)
    {
        http.Response.StatusCode = httpStatus;
        ServerCallContext.WriteStatusHeaders(http.Response.Headers, new Status(StatusCode.Internal, message));
    }

    private async Task HandleErrorAsync(HttpContext http, ServerCallContext context, Exception ex)
    {
        Status status;
        Metadata? trailers = null;
        if (http.RequestAborted.IsCancellationRequested && !context.DeadlineExceeded)
        {
            // The client went away (cancel or disconnect): there is nobody to send a status to.
            logger.LogDebug("Call {Method} cancelled by the client.", methodFullName);
            return;
        }

        if (context.DeadlineExceeded && ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
        {
            status = ServerCallContext.DeadlineExceededStatus;
        }
        else if (ex is RpcException rpc)
        {
            status = rpc.Status;
            trailers = rpc.Trailers;
        }
        else if (ex is OperationCanceledException)
        {
            status = new Status(StatusCode.Cancelled, "The call was cancelled by the server.");
        }
        else
        {
            logger.LogError(ex, "Unhandled exception in gRPC method {Method}.", methodFullName);
            status = new Status(StatusCode.Internal, options.EnableDetailedErrors
                ? $"Exception was thrown by handler. {ex.GetType().Name}: {ex.Message}"
                : "Exception was thrown by handler.");
        }

        try
        {
            await context.CompleteAsync(status, trailers).ConfigureAwait(false);
        }
        catch (Exception completeError)
        {
            // Headers or trailers could not be written (the response is already complete or aborted): reset the
            // stream so the client still learns the call failed.
            logger.LogDebug(completeError, "Could not send status {Status} for {Method}; resetting the stream.", status, methodFullName);
            context.Abort();
        }
    }
}

internal sealed class UnaryServerCallHandler<TService, TRequest, TResponse>(
    Method<TRequest, TResponse> method,
    Func<TService, TRequest, ServerCallContext, Task<TResponse>> invoker,
    ServiceActivator activator, GrpcServerOptions options, ILogger logger)
    : ServerCallHandler(method.FullName, activator, options, logger)
    where TService : class
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    protected override async Task InvokeAsync(object service, ServerCallContext context)
    {
        var request = await ReadSingleRequestAsync(context, method.RequestParser).ConfigureAwait(false);
        await WriteSingleResponseAsync(context, await invoker((TService)service, request, context).ConfigureAwait(false)).ConfigureAwait(false);
    }
}

internal sealed class ServerStreamingServerCallHandler<TService, TRequest, TResponse>(
    Method<TRequest, TResponse> method,
    Func<TService, TRequest, IServerStreamWriter<TResponse>, ServerCallContext, Task> invoker,
    ServiceActivator activator, GrpcServerOptions options, ILogger logger)
    : ServerCallHandler(method.FullName, activator, options, logger)
    where TService : class
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    protected override async Task InvokeAsync(object service, ServerCallContext context)
    {
        var request = await ReadSingleRequestAsync(context, method.RequestParser).ConfigureAwait(false);
        await invoker((TService)service, request, new ServerStreamWriter<TResponse>(context), context).ConfigureAwait(false);
    }
}

internal sealed class ClientStreamingServerCallHandler<TService, TRequest, TResponse>(
    Method<TRequest, TResponse> method,
    Func<TService, IAsyncStreamReader<TRequest>, ServerCallContext, Task<TResponse>> invoker,
    ServiceActivator activator, GrpcServerOptions options, ILogger logger)
    : ServerCallHandler(method.FullName, activator, options, logger)
    where TService : class
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    protected override async Task InvokeAsync(object service, ServerCallContext context)
    {
        var response = await invoker((TService)service, new ServerStreamReader<TRequest>(context, method.RequestParser), context).ConfigureAwait(false);
        await WriteSingleResponseAsync(context, response).ConfigureAwait(false);
    }
}

internal sealed class DuplexStreamingServerCallHandler<TService, TRequest, TResponse>(
    Method<TRequest, TResponse> method,
    Func<TService, IAsyncStreamReader<TRequest>, IServerStreamWriter<TResponse>, ServerCallContext, Task> invoker,
    ServiceActivator activator, GrpcServerOptions options, ILogger logger)
    : ServerCallHandler(method.FullName, activator, options, logger)
    where TService : class
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    protected override Task InvokeAsync(object service, ServerCallContext context) =>
        invoker((TService)service, new ServerStreamReader<TRequest>(context, method.RequestParser), new ServerStreamWriter<TResponse>(context), context);
}

internal sealed class ServerStreamReader<T>(ServerCallContext context, MessageParser<T> parser) : IAsyncStreamReader<T>
    where T : class, IMessage<T>
{
    private T? _current;

    public T Current => _current ?? throw new InvalidOperationException("MoveNext has not returned true.");

    public async Task<bool> MoveNext(CancellationToken cancellationToken = default)
    {
        using var linked = cancellationToken.CanBeCanceled
            ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, context.CancellationToken)
            : null;
        _current = await context.Reader.ReadAsync(parser, linked?.Token ?? context.CancellationToken).ConfigureAwait(false);
        return _current is not null;
    }
}

internal sealed class ServerStreamWriter<T>(ServerCallContext context) : IServerStreamWriter<T>
    where T : class, IMessage<T>
{
    public Task WriteAsync(T message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        var token = cancellationToken.CanBeCanceled ? cancellationToken : context.CancellationToken;
        return context.WriteMessageAsync(message, flush: true, token).AsTask();
    }
}
