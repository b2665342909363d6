using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// Channels from one service to another (Gateway → DialogueService, DialogueService → InferenceService), on
/// grpc-dotnet with the connection settings a long token stream needs.
/// </summary>
public static class GrpcChannels
{
    /// <summary>
    /// A channel to <paramref name="address"/> (<c>http://</c> is HTTP/2 cleartext, <c>https://</c> TLS, verified
    /// against <paramref name="tls"/>'s authority and presenting its client certificate when configured).
    /// </summary>
    public static GrpcChannel ForAddress(string address, Action<GrpcChannelOptions>? configure = null, TlsOptions? tls = null) =>
        ForAddress(new Uri(address, UriKind.Absolute), configure, tls);

    public static GrpcChannel ForAddress(Uri address, Action<GrpcChannelOptions>? configure = null, TlsOptions? tls = null)
    {
        var handler = CreateHandler();
        tls?.ConfigureClient(handler);
        var options = new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            // A replica that comes back (restarted, rescheduled) is connected to again within seconds, not after
            // grpc-dotnet's default backoff of up to two minutes.
            InitialReconnectBackoff = TimeSpan.FromMilliseconds(250),
            MaxReconnectBackoff = TimeSpan.FromSeconds(5),
        };
        configure?.Invoke(options);
        return GrpcChannel.ForAddress(address, options);
    }

    /// <summary>
    /// Calls on <paramref name="channel"/> that carry <c>authorization: Bearer <paramref name="credential"/></c> (this
    /// service's own API key or token); without a credential (the loopback default) they carry none.
    /// </summary>
    public static CallInvoker WithCredential(this ChannelBase channel, string? credential)
    {
        var invoker = channel.CreateCallInvoker();
        if (string.IsNullOrWhiteSpace(credential)) return invoker;
        var value = "Bearer " + credential.Trim();
        return invoker.Intercept(metadata =>
        {
            metadata.Add("authorization", value);
            return metadata;
        });
    }

    /// <summary>The HTTP handler under every service-to-service channel.</summary>
    public static SocketsHttpHandler CreateHandler() => new()
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
}
