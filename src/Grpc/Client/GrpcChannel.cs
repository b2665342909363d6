using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net.Http.Headers;
using System.Net.Security;
using ChatServices.Grpc.Protocol;

namespace ChatServices.Grpc.Client;

/// <summary>Client settings.</summary>
public sealed class GrpcChannelOptions
{
    /// <summary>Largest response message accepted, in bytes (after decompression); default 4 MiB.</summary>
    public int MaxReceiveMessageSize { get; set; } = GrpcProtocol.DefaultMaxReceiveMessageSize;

    /// <summary>Largest request message sent; null for no limit.</summary>
    public int? MaxSendMessageSize { get; set; }

    /// <summary>"gzip" to compress every request message (the server must accept gzip, as all gRPC servers do).</summary>
    public string? RequestCompression { get; set; }

    public CompressionLevel RequestCompressionLevel { get; set; } = CompressionLevel.Fastest;

    /// <summary>A handler of your own (it must speak HTTP/2); by default the channel builds a
    /// <see cref="SocketsHttpHandler"/> tuned for gRPC.</summary>
    public HttpMessageHandler? HttpHandler { get; set; }

    public bool DisposeHttpHandler { get; set; } = true;

    /// <summary>For https:// endpoints with the default handler: how to validate the server certificate
    /// (default: the system's trust store).</summary>
    public RemoteCertificateValidationCallback? RemoteCertificateValidation { get; set; }

    /// <summary>Chooses the endpoint of each call; default round-robin over the channel's endpoints.</summary>
    public Func<IReadOnlyList<Uri>, IEndpointPicker>? EndpointPicker { get; set; }
}

/// <summary>
/// A client's connection to a service: one or more endpoints (<c>http://</c> for HTTP/2 cleartext,
/// <c>https://</c> for TLS), HTTP/2 connections kept open and shared by all calls (many calls multiplex on a
/// connection; more connections open when one reaches the server's stream limit). Create one per service
/// and reuse it; it is thread-safe.
/// </summary>
public sealed class GrpcChannel : IDisposable
{
    internal static readonly MediaTypeHeaderValue ContentType = new(GrpcProtocol.ContentType);

    private readonly HttpMessageInvoker _invoker;
    private readonly IReadOnlyList<Uri> _endpoints;
    private readonly IEndpointPicker _picker;
    private readonly ConcurrentDictionary<string, Uri[]> _methodUris = new();

    private GrpcChannel(IReadOnlyList<Uri> endpoints, GrpcChannelOptions options)
    {
        if (endpoints.Count == 0)
        {
            throw new ArgumentException("A channel needs at least one endpoint.", nameof(endpoints));
        }

        foreach (var endpoint in endpoints)
        {
            if (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps)
            {
                throw new ArgumentException($"Endpoint '{endpoint}' must be http:// (HTTP/2 cleartext) or https:// (TLS).", nameof(endpoints));
            }
        }

        _endpoints = endpoints;
        Options = options;
        _picker = options.EndpointPicker?.Invoke(endpoints) ?? new RoundRobinPicker(endpoints.Count);
        _invoker = new HttpMessageInvoker(options.HttpHandler ?? CreateDefaultHandler(options), options.HttpHandler is null || options.DisposeHttpHandler);
        RequestGzip = MessageCompression.IsGzip(options.RequestCompression) ? options.RequestCompressionLevel : null;
    }

    public IReadOnlyList<Uri> Endpoints => _endpoints;

    internal GrpcChannelOptions Options { get; }

    internal HttpMessageInvoker Invoker => _invoker;

    internal CompressionLevel? RequestGzip { get; }

    public static GrpcChannel ForAddress(string address, GrpcChannelOptions? options = null) => ForAddress(new Uri(address), options);

    public static GrpcChannel ForAddress(Uri address, GrpcChannelOptions? options = null) => new([address], options ?? new GrpcChannelOptions());

    /// <summary>A channel over several equivalent endpoints; each call goes to the one the picker chooses.</summary>
    public static GrpcChannel ForAddresses(IEnumerable<Uri> addresses, GrpcChannelOptions? options = null) => new(addresses.ToArray(), options ?? new GrpcChannelOptions());

    public CallInvoker CreateCallInvoker() => new ChannelCallInvoker(this);

    /// <summary>The request URI of <paramref name="methodPath"/> on the next picked endpoint (cached per method).</summary>
    internal Uri PickUri(string methodPath)
    {
        var uris = _methodUris.GetOrAdd(methodPath, static (path, endpoints) =>
            endpoints.Select(e => new Uri(e, path)).ToArray(), _endpoints);
        return uris[_picker.Pick()];
    }

    public void Dispose() => _invoker.Dispose();

    private static SocketsHttpHandler CreateDefaultHandler(GrpcChannelOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            // Open another connection when the server's concurrent-stream limit is reached instead of queueing.
            EnableMultipleHttp2Connections = true,
            // Connections stay open between calls; recycled every few minutes so DNS changes are seen.
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            // Detect dead peers during long streams (token generation can be quiet for a while).
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            AutomaticDecompression = System.Net.DecompressionMethods.None,
            UseCookies = false,
            UseProxy = false,
        };
        if (options.RemoteCertificateValidation is { } validate)
        {
            handler.SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = validate };
        }

        return handler;
    }
}

/// <summary>Chooses, for each call, which of the channel's endpoints it goes to (an index into them).</summary>
public interface IEndpointPicker
{
    int Pick();
}

/// <summary>Each endpoint in turn.</summary>
public sealed class RoundRobinPicker(int count) : IEndpointPicker
{
    private uint _next;

    public int Pick() => count == 1 ? 0 : (int)(Interlocked.Increment(ref _next) % (uint)count);
}
