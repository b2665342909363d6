using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;

namespace ChatServices.Client;

/// <summary>
/// What every call of the library's clients shares: the call invoker and the settings. Owns the
/// <see cref="GrpcChannel"/> when it made it. Credentials travel as gRPC call credentials on the channel (or on the
/// client factory's clients), so the typed clients handed out carry them too.
/// </summary>
internal sealed class ChatServicesConnection : IDisposable
{
    private readonly GrpcChannel? _ownedChannel;

    /// <param name="invoker">The channel's invoker; null where the clients come from the gRPC client factory.</param>
    /// <param name="options">The settings; copied.</param>
    /// <param name="channel">The channel behind the invoker, where known.</param>
    /// <param name="ownsChannel">Dispose <paramref name="channel"/> with this connection.</param>
    public ChatServicesConnection(CallInvoker? invoker, ChatServicesClientOptions options, GrpcChannel? channel, bool ownsChannel)
    {
        Validate(options);
        Invoker = invoker;
        Options = options.Clone();
        Channel = channel;
        _ownedChannel = ownsChannel ? channel : null;
    }

    /// <summary>Null for clients from the gRPC client factory, which keeps its invokers to itself.</summary>
    public CallInvoker? Invoker { get; }
    public ChatServicesClientOptions Options { get; }
    public GrpcChannel? Channel { get; }

    /// <summary>A connection on a channel of its own to <see cref="ChatServicesClientOptions.Address"/>, carrying its credentials.</summary>
    public static ChatServicesConnection ForOptions(ChatServicesClientOptions options)
    {
        var address = options.Address ?? throw new ArgumentException(
            "ChatServicesClientOptions.Address is required (DialogueService's gRPC address, e.g. http://127.0.0.1:50051).", nameof(options));
        Validate(options);
        var channelOptions = ConfigureChannel(new GrpcChannelOptions { HttpHandler = CreateHandler(), DisposeHttpClient = true }, options);
        if (ChatServicesCredentials.For(options) is { } credentials)
            channelOptions.Credentials = ChannelCredentials.Create(
                address.Scheme == Uri.UriSchemeHttps ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure, credentials);
        var channel = GrpcChannel.ForAddress(address, channelOptions);
        return new ChatServicesConnection(channel.CreateCallInvoker(), options, channel, ownsChannel: true);
    }

    /// <summary>A connection on the caller's channel, whose transport, credentials, retries and limits are the caller's.</summary>
    public static ChatServicesConnection ForChannel(GrpcChannel channel, ChatServicesClientOptions? options)
    {
        ArgumentNullException.ThrowIfNull(channel);
        options ??= new ChatServicesClientOptions();
        if (options.Address is not null)
            throw new ArgumentException("ChatServicesClientOptions.Address must be unset when the client is built on a GrpcChannel: the channel has the address.", nameof(options));
        if (HasCredentials(options))
            throw new ArgumentException(
                "Credentials go on your GrpcChannel when the client is built on one: GrpcChannelOptions.Credentials = " +
                "ChannelCredentials.Create(ChannelCredentials.SecureSsl, ChatServicesCredentials.FromApiKey(key)).", nameof(options));
        return new ChatServicesConnection(channel.CreateCallInvoker(), options, channel, ownsChannel: false);
    }

    /// <summary>Options for a call: the deadline, and the caller's cancellation (which cancels the call on the wire).</summary>
    public static CallOptions CallOptions(TimeSpan? timeout, CancellationToken cancellationToken) =>
        new(deadline: timeout is { } t ? DateTime.UtcNow + t : null, cancellationToken: cancellationToken);

    /// <summary>One unary call with <see cref="ChatServicesClientOptions.Timeout"/>, its failure as the library's exception.</summary>
    public async Task<T> UnaryAsync<T>(Func<CallOptions, AsyncUnaryCall<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call(CallOptions(Options.Timeout, cancellationToken));
        }
        catch (RpcException error)
        {
            throw ChatServicesException.From(error, cancellationToken);
        }
    }

    public static bool HasCredentials(ChatServicesClientOptions options) => options.ApiKey is not null || options.AccessTokenProvider is not null;

    /// <summary>
    /// Refuses settings that cannot work: both an API key and a token provider, an empty key, and credentials that
    /// would cross the network unencrypted (see <see cref="ChatServicesClientOptions.AllowCredentialsOverCleartext"/>).
    /// </summary>
    public static void Validate(ChatServicesClientOptions options)
    {
        if (options.ApiKey is not null && options.AccessTokenProvider is not null)
            throw new ArgumentException("Set ChatServicesClientOptions.ApiKey or AccessTokenProvider, not both.", nameof(options));
        if (options.ApiKey is { } key && string.IsNullOrWhiteSpace(key))
            throw new ArgumentException("ChatServicesClientOptions.ApiKey is empty; leave it unset to send no key.", nameof(options));
        if (options.MaxRetries < 0)
            throw new ArgumentException("ChatServicesClientOptions.MaxRetries must be 0 or more.", nameof(options));
        if (HasCredentials(options) && options.Address is { } address && address.Scheme == Uri.UriSchemeHttp
            && !IsLoopback(address) && !options.AllowCredentialsOverCleartext)
            throw new ArgumentException(
                $"Refusing to send credentials to {address} over unencrypted HTTP/2: use an https:// address, or set " +
                "ChatServicesClientOptions.AllowCredentialsOverCleartext where the network is trusted.", nameof(options));
    }

    /// <summary>
    /// Applies the retry policy and reconnect backoff of <paramref name="options"/> to a channel's options. grpc-dotnet
    /// commits a call (and stops retrying it) once the server's first response arrives, so a chat reply is retried
    /// only before its first event.
    /// </summary>
    public static GrpcChannelOptions ConfigureChannel(GrpcChannelOptions channel, ChatServicesClientOptions options)
    {
        // A restarted service is connected to again within seconds, not after grpc-dotnet's default backoff (up to 2 minutes).
        channel.InitialReconnectBackoff = TimeSpan.FromMilliseconds(250);
        channel.MaxReconnectBackoff = TimeSpan.FromSeconds(5);
        // Credentials over cleartext were allowed by Validate (loopback, or explicitly); grpc-dotnet would
        // otherwise leave call credentials out without an error.
        if (options.Address?.Scheme == Uri.UriSchemeHttp) channel.UnsafeUseInsecureChannelCallCredentials = true;
        if (options.MaxRetries > 0)
        {
            channel.MaxRetryAttempts = Math.Max(channel.MaxRetryAttempts ?? 0, options.MaxRetries + 1);
            channel.ServiceConfig = new ServiceConfig
            {
                MethodConfigs =
                {
                    new MethodConfig
                    {
                        Names = { MethodName.Default },
                        RetryPolicy = new RetryPolicy
                        {
                            MaxAttempts = options.MaxRetries + 1,
                            InitialBackoff = TimeSpan.FromMilliseconds(250),
                            MaxBackoff = TimeSpan.FromSeconds(2),
                            BackoffMultiplier = 2,
                            RetryableStatusCodes = { StatusCode.Unavailable },
                        },
                    },
                },
            };
        }
        return channel;
    }

    /// <summary>The HTTP handler under the library's channels.</summary>
    public static SocketsHttpHandler CreateHandler() => new()
    {
        // Another connection when the server's concurrent-stream limit is reached, instead of queueing calls.
        EnableMultipleHttp2Connections = true,
        // Recycled every few minutes so DNS changes (new replicas) are seen.
        PooledConnectionLifetime = TimeSpan.FromMinutes(10),
        // Detects a dead peer during a long, quiet reply.
        KeepAlivePingDelay = TimeSpan.FromSeconds(60),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
        KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
        ConnectTimeout = TimeSpan.FromSeconds(10),
    };

    private static bool IsLoopback(Uri address) =>
        address.IsLoopback || (IPAddress.TryParse(address.DnsSafeHost, out var ip) && IPAddress.IsLoopback(ip));

    public void Dispose() => _ownedChannel?.Dispose();
}
