using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;

namespace ChatServices.Client;

/// <summary>
/// What every call of the library's clients shares: the call invoker, the settings, and — where the clients send
/// credentials themselves — the <c>authorization</c> metadata. Owns the <see cref="GrpcChannel"/> when it made it.
/// </summary>
internal sealed class ChatServicesConnection : IDisposable
{
    private readonly GrpcChannel? _ownedChannel;

    /// <param name="invoker">The channel's invoker; null where the clients come from the gRPC client factory.</param>
    /// <param name="options">The settings; copied.</param>
    /// <param name="sendsCredentials">
    /// True where this connection adds the <c>authorization</c> metadata to each call; false where the channel
    /// already carries call credentials (clients registered through the gRPC client factory).
    /// </param>
    /// <param name="channel">The channel behind the invoker, where known.</param>
    /// <param name="ownsChannel">Dispose <paramref name="channel"/> with this connection.</param>
    public ChatServicesConnection(CallInvoker? invoker, ChatServicesClientOptions options, bool sendsCredentials, GrpcChannel? channel, bool ownsChannel)
    {
        ValidateCredentials(options);
        Invoker = invoker;
        Options = options.Clone();
        SendsCredentials = sendsCredentials;
        Channel = channel;
        _ownedChannel = ownsChannel ? channel : null;
    }

    /// <summary>Null for clients from the gRPC client factory, which keeps its invokers to itself.</summary>
    public CallInvoker? Invoker { get; }
    public ChatServicesClientOptions Options { get; }
    public GrpcChannel? Channel { get; }
    public bool SendsCredentials { get; }

    /// <summary>A connection on a channel of its own to <see cref="ChatServicesClientOptions.Address"/>.</summary>
    public static ChatServicesConnection ForOptions(ChatServicesClientOptions options)
    {
        var address = options.Address ?? throw new ArgumentException(
            "ChatServicesClientOptions.Address is required (DialogueService's gRPC address, e.g. http://127.0.0.1:50051).", nameof(options));
        var channel = GrpcChannel.ForAddress(address, ChannelOptions(options));
        return new ChatServicesConnection(channel.CreateCallInvoker(), options, sendsCredentials: true, channel, ownsChannel: true);
    }

    /// <summary>A connection on the caller's channel, whose transport, retries and limits are the caller's.</summary>
    public static ChatServicesConnection ForChannel(GrpcChannel channel, ChatServicesClientOptions? options)
    {
        ArgumentNullException.ThrowIfNull(channel);
        options ??= new ChatServicesClientOptions();
        if (options.Address is not null)
            throw new ArgumentException("ChatServicesClientOptions.Address must be unset when the client is built on a GrpcChannel: the channel has the address.", nameof(options));
        return new ChatServicesConnection(channel.CreateCallInvoker(), options, sendsCredentials: true, channel, ownsChannel: false);
    }

    /// <summary>
    /// Options for a call: the deadline, the caller's cancellation (which cancels the call on the wire), and the
    /// <c>authorization</c> metadata, asked of the token provider per call.
    /// </summary>
    public async ValueTask<CallOptions> CallOptionsAsync(TimeSpan? timeout, CancellationToken cancellationToken)
    {
        Metadata? headers = null;
        if (SendsCredentials && HasCredentials(Options))
        {
            headers = [];
            await AddAuthorizationAsync(Options, headers, cancellationToken);
        }
        DateTime? deadline = timeout is { } t ? DateTime.UtcNow + t : null;
        return new CallOptions(headers, deadline, cancellationToken);
    }

    /// <summary>One unary call with <see cref="ChatServicesClientOptions.Timeout"/>, its failure as the library's exception.</summary>
    public async Task<T> UnaryAsync<T>(Func<CallOptions, AsyncUnaryCall<T>> call, CancellationToken cancellationToken)
    {
        var options = await CallOptionsAsync(Options.Timeout, cancellationToken);
        try
        {
            return await call(options);
        }
        catch (RpcException error)
        {
            throw ChatServicesException.From(error, cancellationToken);
        }
    }

    /// <summary>Adds <c>authorization: Bearer …</c> from the API key or the token provider, if either is set.</summary>
    public static async ValueTask AddAuthorizationAsync(ChatServicesClientOptions options, Metadata headers, CancellationToken cancellationToken)
    {
        string? secret = options.ApiKey;
        if (options.AccessTokenProvider is { } provider)
        {
            secret = await provider(cancellationToken);
            if (string.IsNullOrWhiteSpace(secret))
                throw new InvalidOperationException("ChatServicesClientOptions.AccessTokenProvider returned no token.");
        }
        if (secret is not null) headers.Add("authorization", "Bearer " + secret);
    }

    public static bool HasCredentials(ChatServicesClientOptions options) => options.ApiKey is not null || options.AccessTokenProvider is not null;

    /// <summary>
    /// Refuses settings that cannot work: both an API key and a token provider, an empty key, and credentials that
    /// would cross the network unencrypted (see <see cref="ChatServicesClientOptions.AllowCredentialsOverCleartext"/>).
    /// </summary>
    public static void ValidateCredentials(ChatServicesClientOptions options)
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
    /// The channel settings of the library's own channels: connections fit for long token streams, and retries of
    /// UNAVAILABLE. grpc-dotnet commits a call (and stops retrying it) once the server's first response arrives,
    /// so a chat reply is retried only before its first event.
    /// </summary>
    public static GrpcChannelOptions ChannelOptions(ChatServicesClientOptions options) => ConfigureChannel(new GrpcChannelOptions
    {
        HttpHandler = CreateHandler(),
        DisposeHttpClient = true,
    }, options);

    /// <summary>Applies the retry policy and reconnect backoff of <paramref name="options"/> to a channel's options.</summary>
    public static GrpcChannelOptions ConfigureChannel(GrpcChannelOptions channel, ChatServicesClientOptions options)
    {
        // A restarted service is connected to again within seconds, not after grpc-dotnet's default backoff (up to 2 minutes).
        channel.InitialReconnectBackoff = TimeSpan.FromMilliseconds(250);
        channel.MaxReconnectBackoff = TimeSpan.FromSeconds(5);
        // Credentials over cleartext were allowed by ValidateCredentials (loopback, or explicitly); grpc-dotnet would
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
