using System.IO.Compression;
using ChatServices.Grpc.Protocol;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace ChatServices.Grpc.Server;

/// <summary>
/// What a handler knows about its call: deadline, cancellation, request headers, and what it may send back
/// (response headers, trailers, status). One per call; not shared between calls.
/// </summary>
public sealed class ServerCallContext
{
    private readonly HttpContext _http;
    private readonly CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenSource? _linkedCts;
    private Metadata? _requestHeaders;
    private Metadata? _responseTrailers;

    internal ServerCallContext(HttpContext http, string method, GrpcServerOptions options, TimeSpan? timeout)
    {
        _http = http;
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

        if (timeout is { } t)
        {
            Deadline = DateTime.UtcNow + t;
            // Two sources so that a fired deadline can be told apart from a client that went away.
            _deadlineCts = new CancellationTokenSource(t > TimeSpan.Zero ? t : TimeSpan.Zero);
            _linkedCts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, _deadlineCts.Token);
            CancellationToken = _linkedCts.Token;
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

    internal GrpcServerOptions Options { get; }

    internal MessageReader Reader { get; }

    internal CompressionLevel? ResponseCompression { get; }

    /// <summary>True once response headers or a message went out: from then on, the status goes in trailers.</summary>
    internal bool ResponseStarted { get; private set; }

    internal bool HasResponseTrailers => _responseTrailers is { Count: > 0 };

    /// <summary>Sends response headers now (before the first message). At most once.</summary>
    public async Task WriteResponseHeadersAsync(Metadata headers)
    {
        if (ResponseStarted)
        {
            throw new InvalidOperationException("Response headers were already sent.");
        }

        MetadataEncoding.WriteTo(headers, _http.Response.Headers);
        ResponseStarted = true;
        await _http.Response.BodyWriter.FlushAsync(CancellationToken).ConfigureAwait(false);
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

    internal void DisposeTimers()
    {
        _linkedCts?.Dispose();
        _deadlineCts?.Dispose();
    }
}
