using Grpc.Core;

namespace ChatServices.Client;

/// <summary>
/// gRPC call credentials that send <c>authorization: Bearer &lt;secret&gt;</c> metadata, as ChatServices expects: for
/// a <c>GrpcChannel</c> of your own (<c>GrpcChannelOptions.Credentials = ChannelCredentials.Create(ChannelCredentials.SecureSsl,
/// ChatServicesCredentials.FromApiKey(key))</c>). The library's own channels and clients use them already.
/// </summary>
public static class ChatServicesCredentials
{
    /// <summary>An API key (<c>csk_…</c>) on every call.</summary>
    public static CallCredentials FromApiKey(string apiKey)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(apiKey);
        return CallCredentials.FromInterceptor((_, metadata) =>
        {
            AddBearer(metadata, apiKey);
            return Task.CompletedTask;
        });
    }

    /// <summary>A bearer token (a JWT) asked of <paramref name="tokenProvider"/> before every call, so a refreshed token is used.</summary>
    public static CallCredentials FromTokenProvider(Func<CancellationToken, ValueTask<string>> tokenProvider)
    {
        ArgumentNullException.ThrowIfNull(tokenProvider);
        return CallCredentials.FromInterceptor((context, metadata) => AddBearerTokenAsync(tokenProvider, metadata, context.CancellationToken));
    }

    /// <summary>The credentials <paramref name="options"/> name, or null where it names none.</summary>
    internal static CallCredentials? For(ChatServicesClientOptions options) =>
        options.ApiKey is { } key ? FromApiKey(key)
        : options.AccessTokenProvider is { } provider ? FromTokenProvider(provider)
        : null;

    /// <summary>Adds the <c>authorization</c> metadata <paramref name="options"/> names, if any (for the gRPC client factory).</summary>
    internal static Task AddAsync(ChatServicesClientOptions options, Metadata metadata, CancellationToken cancellationToken)
    {
        if (options.ApiKey is { } key) AddBearer(metadata, key);
        else if (options.AccessTokenProvider is { } provider) return AddBearerTokenAsync(provider, metadata, cancellationToken);
        return Task.CompletedTask;
    }

    private static async Task AddBearerTokenAsync(Func<CancellationToken, ValueTask<string>> tokenProvider, Metadata metadata, CancellationToken cancellationToken)
    {
        var token = await tokenProvider(cancellationToken);
        if (string.IsNullOrWhiteSpace(token))
            throw new InvalidOperationException("The ChatServices access token provider returned no token.");
        AddBearer(metadata, token);
    }

    private static void AddBearer(Metadata metadata, string secret) => metadata.Add("authorization", "Bearer " + secret);
}
