using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using ChatServices.Grpc.Protocol;
using Google.Protobuf;

namespace ChatServices.Grpc.Client;

/// <summary>
/// One client call of any kind, over one HTTP/2 request. Sends the request headers and body, validates the
/// response headers (Trailers-Only included), reads length-prefixed response messages and ends with the status
/// from the trailers. Every failure surfaces as <see cref="RpcException"/>: the deadline as DEADLINE_EXCEEDED,
/// the caller's cancellation as CANCELLED, a stream the server reset by its RST_STREAM code, a connection
/// failure as UNAVAILABLE.
/// Invariant: once <see cref="_status"/> is set the call is over and the HTTP request is released.
/// </summary>
internal sealed class ClientCall<TRequest, TResponse> : IClientCallState, IAsyncStreamReader<TResponse>, IClientStreamWriter<TRequest>
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    private readonly GrpcChannel _channel;
    private readonly Method<TRequest, TResponse> _method;
    private readonly CallOptions _options;
    private readonly CancellationTokenSource _cts;
    private readonly CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenRegistration _callerRegistration;
    private HttpRequestMessage? _request;
    private StreamingRequestContent? _requestStream;
    private Task<HttpResponseMessage>? _responseTask;
    private HttpResponseMessage? _response;
    private MessageReader? _reader;
    private Status? _status;
    private Metadata? _trailers;
    private TResponse? _current;
    private bool _requestCompleted;
    private volatile bool _disposed;

    public ClientCall(GrpcChannel channel, Method<TRequest, TResponse> method, CallOptions options)
    {
        _channel = channel;
        _method = method;
        _options = options;
        // Not a linked source: the registration on the caller's (possibly long-lived) token is removed as soon
        // as the call finishes, so finished calls never accumulate on it.
        _cts = new CancellationTokenSource();
        if (options.CancellationToken.CanBeCanceled)
        {
            _callerRegistration = options.CancellationToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _cts);
        }
        if (options.Deadline is { } deadline && deadline != DateTime.MaxValue)
        {
            var timeout = deadline.ToUniversalTime() - DateTime.UtcNow;
            _deadlineCts = new CancellationTokenSource(timeout > TimeSpan.Zero ? timeout : TimeSpan.Zero);
            _deadlineCts.Token.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _cts);
        }
    }

    public TResponse Current => _current ?? throw new InvalidOperationException("MoveNext has not returned true.");

    public Task<Metadata> ResponseHeadersAsync => GetResponseHeadersAsync();

    /// <summary>Sends the request headers, and the request message when there is one (unary, server streaming).</summary>
    public void Start(TRequest? request)
    {
        var options = _options;
        if (options.Deadline is { } deadline && deadline.ToUniversalTime() <= DateTime.UtcNow)
        {
            Finish(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"), new Metadata());
            _responseTask = Task.FromException<HttpResponseMessage>(new RpcException(_status!.Value));
            return;
        }

        var http = new HttpRequestMessage(HttpMethod.Post, _channel.PickUri(_method.FullName))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var headers = http.Headers;
        headers.TryAddWithoutValidation(GrpcProtocol.TeHeader, "trailers");
        headers.TryAddWithoutValidation("user-agent", GrpcProtocol.UserAgent);
        headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GrpcProtocol.SupportedEncodings);
        if (_channel.RequestGzip is not null)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.EncodingHeader, GrpcProtocol.GzipEncoding);
        }

        if (options.Deadline is { } d && d != DateTime.MaxValue)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcTimeout.Format(d.ToUniversalTime() - DateTime.UtcNow));
        }

        if (options.Headers is { Count: > 0 } metadata)
        {
            MetadataEncoding.WriteTo(metadata, headers);
        }

        if (request is not null)
        {
            var frame = MessageFraming.RentFrame(request, _channel.Options.MaxSendMessageSize, _channel.RequestGzip, out var length);
            http.Content = new FramedMessageContent(frame, length, GrpcChannel.ContentType);
        }
        else
        {
            _requestStream = new StreamingRequestContent(GrpcChannel.ContentType);
            http.Content = _requestStream;
        }

        _request = http;
        _responseTask = SendAsync(http);
    }

    /// <summary>The response of a unary or client-streaming call: exactly one message, then an OK status.</summary>
    public async Task<TResponse> ReadSingleResponseAsync()
    {
        try
        {
            await _responseTask!.ConfigureAwait(false);
            var message = await ReadMessageAsync(_cts.Token).ConfigureAwait(false);
            if (message is null)
            {
                FinishFromTrailers();
                throw new RpcException(new Status(StatusCode.Internal, "The server ended the call with OK but sent no response message."));
            }

            if (await ReadMessageAsync(_cts.Token).ConfigureAwait(false) is not null)
            {
                throw new RpcException(new Status(StatusCode.Internal, "The server sent more than one response message for a unary response."));
            }

            FinishFromTrailers();
            return message;
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
    }

    public async Task<bool> MoveNext(CancellationToken cancellationToken = default)
    {
        if (_status is { } done)
        {
            return done.StatusCode == StatusCode.OK ? false : throw new RpcException(done, _trailers ?? new Metadata());
        }

        CancellationTokenRegistration registration = default;
        if (cancellationToken.CanBeCanceled)
        {
            // Cancelling a read cancels the call, as in every gRPC client.
            registration = cancellationToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _cts);
        }

        try
        {
            await _responseTask!.ConfigureAwait(false);
            _current = await ReadMessageAsync(_cts.Token).ConfigureAwait(false);
            if (_current is not null)
            {
                return true;
            }

            FinishFromTrailers();
            return false;
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
        finally
        {
            registration.Dispose();
        }
    }

    public async Task WriteAsync(TRequest message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_requestStream is null)
        {
            throw new InvalidOperationException("This call has no request stream.");
        }

        if (_requestCompleted)
        {
            throw new InvalidOperationException("The request stream was already completed.");
        }

        ThrowIfFinished();
        var frame = MessageFraming.RentFrame(message, _channel.Options.MaxSendMessageSize, _channel.RequestGzip, out var length);
        try
        {
            var stream = await _requestStream.StreamAsync.ConfigureAwait(false);
            using var linked = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _cts.Token) : null;
            var token = linked?.Token ?? _cts.Token;
            await stream.WriteAsync(frame.AsMemory(0, length), token).ConfigureAwait(false);
            await stream.FlushAsync(token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            ThrowIfFinished();
            throw Fail(ex);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(frame);
        }
    }

    public Task CompleteAsync()
    {
        _requestCompleted = true;
        _requestStream?.Complete();
        return Task.CompletedTask;
    }

    public Status GetStatus() => _status ?? throw new InvalidOperationException("The call has not finished.");

    public Metadata GetTrailers() => _trailers ?? throw new InvalidOperationException("The call has not finished.");

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_status is null)
        {
            Finish(new Status(StatusCode.Cancelled, "Call disposed before it finished."), new Metadata());
        }
    }

    private async Task<Metadata> GetResponseHeadersAsync()
    {
        var response = await _responseTask!.ConfigureAwait(false);
        var metadata = new Metadata();
        MetadataEncoding.AddFromHeaders(metadata, response.Headers);
        return metadata;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request)
    {
        HttpResponseMessage response;
        try
        {
            response = await _channel.Invoker.SendAsync(request, _cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }

        _response = response;
        try
        {
            var grpcStatus = GetHeader(response.Headers, GrpcProtocol.StatusTrailer);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new RpcException(grpcStatus is not null
                    ? ParseStatus(grpcStatus, GetHeader(response.Headers, GrpcProtocol.MessageTrailer))
                    : new Status(GrpcProtocol.FromHttpStatus((int)response.StatusCode), $"Bad gRPC response. HTTP status code: {(int)response.StatusCode}"));
            }

            if (grpcStatus is not null)
            {
                // Trailers-Only: the headers are the trailers; there is no body.
                var trailers = new Metadata();
                MetadataEncoding.AddFromHeaders(trailers, response.Headers);
                var status = ParseStatus(grpcStatus, GetHeader(response.Headers, GrpcProtocol.MessageTrailer));
                Finish(status, trailers);
                if (status.StatusCode != StatusCode.OK)
                {
                    throw new RpcException(status, trailers);
                }

                return response;
            }

            if (!GrpcProtocol.IsGrpcContentType(response.Content.Headers.ContentType?.MediaType))
            {
                throw new RpcException(new Status(StatusCode.Unknown, $"Bad gRPC response. Invalid content-type value: {response.Content.Headers.ContentType}"));
            }

            var body = await response.Content.ReadAsStreamAsync(_cts.Token).ConfigureAwait(false);
            var encoding = GetHeader(response.Headers, GrpcProtocol.EncodingHeader);
            _reader = new MessageReader(PipeReader.Create(body, new StreamPipeReaderOptions(bufferSize: 16 * 1024, minimumReadSize: 4 * 1024)),
                _channel.Options.MaxReceiveMessageSize, encoding);
            return response;
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
    }

    private ValueTask<TResponse?> ReadMessageAsync(CancellationToken cancellationToken) =>
        _reader is null ? ValueTask.FromResult<TResponse?>(null) : _reader.ReadAsync(_method.ResponseParser, cancellationToken);

    /// <summary>At the end of the response body: the status from the trailers (already set for Trailers-Only).
    /// Throws <see cref="RpcException"/> for a status other than OK.</summary>
    private void FinishFromTrailers()
    {
        if (_status is null)
        {
            var trailingHeaders = _response!.TrailingHeaders;
            var grpcStatus = GetHeader(trailingHeaders, GrpcProtocol.StatusTrailer);
            var trailers = new Metadata();
            MetadataEncoding.AddFromHeaders(trailers, trailingHeaders);
            var status = grpcStatus is null
                ? new Status(StatusCode.Internal, "The response ended without a grpc-status.")
                : ParseStatus(grpcStatus, GetHeader(trailingHeaders, GrpcProtocol.MessageTrailer));
            Finish(status, trailers);
        }

        if (_status!.Value.StatusCode != StatusCode.OK)
        {
            throw new RpcException(_status.Value, _trailers!);
        }
    }

    private void ThrowIfFinished()
    {
        if (_status is { } status)
        {
            if (status.StatusCode == StatusCode.OK)
            {
                throw new InvalidOperationException("The call has already finished.");
            }

            throw new RpcException(status, _trailers ?? new Metadata());
        }
    }

    /// <summary>Ends the call with the status <paramref name="error"/> stands for, and returns the exception to throw.</summary>
    private RpcException Fail(Exception error)
    {
        if (_status is { } existing && existing.StatusCode != StatusCode.OK)
        {
            return error as RpcException ?? new RpcException(existing, _trailers ?? new Metadata());
        }

        RpcException result;
        if (error is RpcException rpc)
        {
            result = rpc;
        }
        else if (_deadlineCts?.IsCancellationRequested == true)
        {
            result = new RpcException(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"));
        }
        else if (_options.CancellationToken.IsCancellationRequested || _disposed || (error is OperationCanceledException && _cts.IsCancellationRequested))
        {
            result = new RpcException(new Status(StatusCode.Cancelled, "Call cancelled by the client."));
        }
        else if (FindProtocolError(error) is { } reset)
        {
            result = new RpcException(new Status(GrpcProtocol.FromHttp2ErrorCode(reset.ErrorCode),
                $"The server reset the stream (HTTP/2 error code {reset.ErrorCode}).")) ;
        }
        else if (error is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError or HttpRequestError.VersionNegotiationError or HttpRequestError.ProxyTunnelError })
        {
            result = new RpcException(new Status(StatusCode.Unavailable, "Error connecting to the server: " + error.Message), new Metadata(), null, error);
        }
        else
        {
            result = new RpcException(new Status(StatusCode.Unavailable, "Error in the HTTP/2 transport: " + error.Message), new Metadata(), null, error);
        }

        Finish(result.Status, result.Trailers);
        return result;
    }

    private static HttpProtocolException? FindProtocolError(Exception? error)
    {
        for (; error is not null; error = error.InnerException)
        {
            if (error is HttpProtocolException protocolError)
            {
                return protocolError;
            }
        }

        return null;
    }

    private void Finish(Status status, Metadata trailers)
    {
        lock (_cts)
        {
            if (_status is not null)
            {
                return;
            }

            _status = status;
            _trailers = trailers;
        }

        if (status.StatusCode != StatusCode.OK)
        {
            // Resets the HTTP/2 stream (RST_STREAM CANCEL) if it is still open: the server's handler sees it.
            _cts.Cancel();
            _requestStream?.Abort(new RpcException(status, trailers));
        }
        else
        {
            _requestStream?.Abort(new InvalidOperationException("The call has already finished."));
        }

        _response?.Dispose();
        _request?.Dispose();
        _callerRegistration.Dispose();
        _deadlineCts?.Dispose();
    }

    private static string? GetHeader(HttpHeaders headers, string name) =>
        headers.NonValidated.TryGetValues(name, out var values) && values.Count > 0 ? values.ToString() : null;

    private static Status ParseStatus(string status, string? message)
    {
        var code = int.TryParse(status, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? (StatusCode)value
            : StatusCode.Unknown;
        return new Status(code, message is null ? "" : PercentEncoding.Decode(message));
    }
}
