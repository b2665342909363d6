using System.Globalization;
using System.IO.Compression;
using ChatServices.Grpc.Protocol;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace ChatServices.Grpc.Server;

/// <summary>
/// What a handler knows about its call: deadline, cancellation, request headers, and what it may send back
/// (response headers, trailers, status). One per call; not shared between calls.
/// </summary>
/// <remarks>
/// With a deadline, the server answers DEADLINE_EXCEEDED when it passes even if the handler is still running
/// (and ignoring its token). Response writes then go through <see cref="_responseLock"/>, so the deadline and
/// the handler never write at the same time; without a deadline there is no lock and no cost.
/// Invariant: once <see cref="_ended"/> is set (under the lock), nothing touches the response any more.
/// </remarks>
public sealed class ServerCallContext
{
    internal static readonly Status DeadlineExceededStatus = new(StatusCode.DeadlineExceeded, "Deadline Exceeded");
    private static readonly string[] StatusStrings = Enumerable.Range(0, 17).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();

    private readonly HttpContext _http;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenSource? _linkedCts;
    private readonly SemaphoreSlim? _responseLock;
    private readonly CancellationTokenRegistration _deadlineRegistration;
    private Metadata? _requestHeaders;
    private Metadata? _responseTrailers;
    private bool _ended;

    internal ServerCallContext(HttpContext http, string method, GrpcServerOptions options, TimeSpan? timeout, ILogger logger)
    {
        _http = http;
        _logger = logger;
        Method = method;
        Options = options;
        var requestEncoding = http.Request.Headers.GetSingle(GrpcProtocol.EncodingHeader);
        Reader = new MessageReader(http.Request.BodyReader, options.MaxReceiveMessageSize, requestEncoding);
        var acceptEncoding = http.Request.Headers.GetSingle(GrpcProtocol.AcceptEncodingHeader);
        var wantsGzip = MessageCompression.IsGzip(options.ResponseCompressionAlgorithm) || MessageCompression.IsGzip(requestEncoding);
        if (wantsGzip && GrpcProtocol.AcceptsEncoding(acceptEncoding, GrpcProtocol.GzipEncoding))
        {
            ResponseCompression = options.ResponseCompressionLevel;
        }

        // Response headers first: the deadline below may complete the response at once.
        http.Response.ContentType = GrpcProtocol.ContentType;
        if (ResponseCompression is not null)
        {
            http.Response.Headers[GrpcProtocol.EncodingHeader] = GrpcProtocol.GzipEncoding;
        }

        if (timeout is { } t)
        {
            Deadline = DateTime.UtcNow + t;
            _responseLock = new SemaphoreSlim(1, 1);
            // Two sources so that a fired deadline can be told apart from a client that went away.
            _deadlineCts = new CancellationTokenSource(t > TimeSpan.Zero ? t : TimeSpan.Zero);
            _linkedCts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, _deadlineCts.Token);
            CancellationToken = _linkedCts.Token;
            _deadlineRegistration = _deadlineCts.Token.UnsafeRegister(static s => _ = ((ServerCallContext)s!).OnDeadlineAsync(), this);
        }
        else
        {
            Deadline = DateTime.MaxValue;
            CancellationToken = http.RequestAborted;
        }
    }

    /// <summary>The method path, <c>/package.Service/Method</c>.</summary>
    public string Method { get; }

    public string Host => _http.Request.Host.Value ?? "";

    /// <summary>The client's address, as gRPC writes it: <c>ipv4:127.0.0.1:53412</c> or <c>ipv6:[::1]:53412</c>.</summary>
    public string Peer
    {
        get
        {
            var ip = _http.Connection.RemoteIpAddress;
            if (ip is null)
            {
                return "unknown";
            }

            return ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
                ? $"ipv6:[{ip}]:{_http.Connection.RemotePort}"
                : $"ipv4:{ip}:{_http.Connection.RemotePort}";
        }
    }

    /// <summary>When the client's deadline (<c>grpc-timeout</c>) passes, in UTC; <see cref="DateTime.MaxValue"/> without one.</summary>
    public DateTime Deadline { get; }

    /// <summary>Fires when the client cancels or disconnects, or the deadline passes.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>The client's custom metadata (transport headers left out).</summary>
    public Metadata RequestHeaders
    {
        get
        {
            if (_requestHeaders is null)
            {
                _requestHeaders = new Metadata();
                MetadataEncoding.AddFromHeaders(_requestHeaders, _http.Request.Headers);
            }

            return _requestHeaders;
        }
    }

    /// <summary>Trailing metadata sent with the status at the end of the call.</summary>
    public Metadata ResponseTrailers => _responseTrailers ??= new Metadata();

    /// <summary>The status the call ends with when the handler returns normally (default OK).</summary>
    public Status Status { get; set; } = Status.DefaultSuccess;

    /// <summary>True once the deadline passed.</summary>
    internal bool DeadlineExceeded => _deadlineCts?.IsCancellationRequested == true;

    /// <summary>True once the response was ended (by the deadline or by <see cref="CompleteAsync"/>).</summary>
    private bool ResponseEnded { get; set; }

    internal GrpcServerOptions Options { get; }

    internal MessageReader Reader { get; }

    internal CompressionLevel? ResponseCompression { get; }

    /// <summary>True once response headers or a message went out: from then on, the status goes in trailers.</summary>
    internal bool ResponseStarted { get; private set; }

    internal bool HasResponseTrailers => _responseTrailers is { Count: > 0 };

    /// <summary>Sends response headers now (before the first message). At most once.</summary>
    public async Task WriteResponseHeadersAsync(Metadata headers)
    {
        await EnterResponseAsync().ConfigureAwait(false);
        try
        {
            if (ResponseStarted)
            {
                throw new InvalidOperationException("Response headers were already sent.");
            }

            MetadataEncoding.WriteTo(headers, _http.Response.Headers);
            ResponseStarted = true;
            await _http.Response.BodyWriter.FlushAsync(CancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _responseLock?.Release();
        }
    }

    /// <summary>Cancels the call from the server: the stream is reset with CANCEL and the client sees CANCELLED.</summary>
    public void Abort()
    {
        var reset = _http.Features.Get<IHttpResetFeature>();
        if (reset is not null)
        {
            reset.Reset(GrpcProtocol.Http2CancelErrorCode);
        }
        else
        {
            _http.Abort();
        }
    }

    /// <summary>The ASP.NET Core request under this call, for what the gRPC API does not cover (the
    /// authenticated user, connection details). Code that uses it is tied to this transport.</summary>
    public HttpContext GetHttpContext() => _http;

    internal async ValueTask WriteMessageAsync<T>(T message, bool flush, CancellationToken cancellationToken)
        where T : class, Google.Protobuf.IMessage<T>
    {
        await EnterResponseAsync().ConfigureAwait(false);
        try
        {
            CancellationToken.ThrowIfCancellationRequested();
            MessageFraming.Write(_http.Response.BodyWriter, message, Options.MaxSendMessageSize, ResponseCompression);
            ResponseStarted = true;
            if (flush)
            {
                var result = await _http.Response.BodyWriter.FlushAsync(cancellationToken).ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
            }
        }
        finally
        {
            _responseLock?.Release();
        }
    }

    /// <summary>Ends the response with <paramref name="status"/> and the trailers; nothing when the deadline
    /// already ended it.</summary>
    internal async ValueTask CompleteAsync(Status status, Metadata? extraTrailers)
    {
        if (_responseLock is not null)
        {
            await _responseLock.WaitAsync().ConfigureAwait(false);
        }

        try
        {
            if (ResponseEnded || _ended)
            {
                return;
            }

            ResponseEnded = true;
            WriteStatus(status, extraTrailers);
        }
        finally
        {
            _responseLock?.Release();
        }
    }

    /// <summary>The call is over: from here on the deadline leaves the response alone, and the timers go.</summary>
    internal async ValueTask EndAsync()
    {
        if (_responseLock is not null)
        {
            await _responseLock.WaitAsync().ConfigureAwait(false);
            _ended = true;
            _responseLock.Release();
        }

        _deadlineRegistration.Dispose();
        _linkedCts?.Dispose();
        _deadlineCts?.Dispose();
    }

    /// <summary>Takes the response for a write; fails the write when the response was already ended.</summary>
    private async ValueTask EnterResponseAsync()
    {
        if (_responseLock is null)
        {
            return;
        }

        await _responseLock.WaitAsync().ConfigureAwait(false);
        if (ResponseEnded || _ended)
        {
            _responseLock.Release();
            throw new OperationCanceledException("The call has ended (deadline exceeded).", CancellationToken);
        }
    }

    /// <summary>The deadline passed: answer DEADLINE_EXCEEDED now, whatever the handler is doing; the handler's
    /// token has fired and its later writes fail.</summary>
    private async Task OnDeadlineAsync()
    {
        await _responseLock!.WaitAsync().ConfigureAwait(false);
        try
        {
            if (ResponseEnded || _ended)
            {
                return;
            }

            ResponseEnded = true;
            WriteStatus(DeadlineExceededStatus, null);
            await _http.Response.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The client may be gone already; then there is nobody to tell.
            _logger.LogDebug(ex, "Could not send DEADLINE_EXCEEDED for {Method}.", Method);
        }
        finally
        {
            _responseLock.Release();
        }
    }

    /// <summary>Status and trailers: in trailers after a response has started, else as Trailers-Only (the one
    /// HEADERS frame that also ends the stream).</summary>
    private void WriteStatus(Status status, Metadata? extraTrailers)
    {
        var response = _http.Response;
        if (!ResponseStarted && !response.HasStarted)
        {
            if (HasResponseTrailers)
            {
                MetadataEncoding.WriteTo(ResponseTrailers, response.Headers);
            }

            if (extraTrailers is { Count: > 0 })
            {
                MetadataEncoding.WriteTo(extraTrailers, response.Headers);
            }

            WriteStatusHeaders(response.Headers, status);
            return;
        }

        if (!response.SupportsTrailers())
        {
            throw new InvalidOperationException("The response does not support trailers.");
        }

        response.AppendTrailer(GrpcProtocol.StatusTrailer, StatusString(status.StatusCode));
        if (!string.IsNullOrEmpty(status.Detail))
        {
            response.AppendTrailer(GrpcProtocol.MessageTrailer, PercentEncoding.Encode(status.Detail));
        }

        if (HasResponseTrailers)
        {
            AppendTrailers(response, ResponseTrailers);
        }

        if (extraTrailers is { Count: > 0 })
        {
            AppendTrailers(response, extraTrailers);
        }
    }

    private static void AppendTrailers(HttpResponse response, Metadata trailers)
    {
        foreach (var entry in trailers)
        {
            if (!GrpcProtocol.IsReservedHeader(entry.Key))
            {
                response.AppendTrailer(entry.Key, MetadataEncoding.EncodeValue(entry));
            }
        }
    }

    private static string StatusString(StatusCode code) =>
        (int)code is >= 0 and < 17 ? StatusStrings[(int)code] : ((int)code).ToString(CultureInfo.InvariantCulture);

    internal static void WriteStatusHeaders(IHeaderDictionary headers, Status status)
    {
        headers[GrpcProtocol.StatusTrailer] = StatusString(status.StatusCode);
        if (!string.IsNullOrEmpty(status.Detail))
        {
            headers[GrpcProtocol.MessageTrailer] = PercentEncoding.Encode(status.Detail);
        }

        if (headers.ContentType.Count == 0)
        {
            headers.ContentType = GrpcProtocol.ContentType;
        }
    }
}
