namespace ChatServices.Client;

/// <summary>
/// Where DialogueService is, how to authenticate to it, and the deadlines and retries of its calls. Used by
/// <see cref="ChatServicesChatClient"/>, <see cref="ChatServicesTokenizer"/> and
/// <see cref="ChatServicesServiceCollectionExtensions.AddChatServicesClient"/>.
/// </summary>
public sealed class ChatServicesClientOptions
{
    /// <summary>
    /// DialogueService's gRPC address, for example <c>http://127.0.0.1:50051</c> (HTTP/2 cleartext) or
    /// <c>https://chat.example.com</c> (TLS). Required unless the client is built on a <c>GrpcChannel</c>.
    /// </summary>
    public Uri? Address { get; set; }

    /// <summary>
    /// An API key (keys look like <c>csk_…</c>), sent on every call as <c>authorization: Bearer &lt;key&gt;</c>.
    /// Leave unset (with <see cref="AccessTokenProvider"/> unset too) where the service needs no credential, as
    /// the embedded loopback default does. Set at most one of the two.
    /// </summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// Called before every call for a bearer token (a JWT from your identity provider), sent as
    /// <c>authorization: Bearer &lt;token&gt;</c>; cache and refresh the token inside it as your provider
    /// advises. Set at most one of this and <see cref="ApiKey"/>.
    /// </summary>
    public Func<CancellationToken, ValueTask<string>>? AccessTokenProvider { get; set; }

    /// <summary>
    /// Credentials are refused over <c>http://</c> to any host but this machine (loopback), because the key or
    /// token would cross the network unencrypted. Set to true where the network itself is trusted or encrypted
    /// (a service mesh with mutual TLS, for example).
    /// </summary>
    public bool AllowCredentialsOverCleartext { get; set; }

    /// <summary>
    /// The end user whose conversations the calls act on, sent as <c>owner_id</c>. Leave unset to act as the
    /// identity your credential names. Setting another user's id is for a credential with the service role
    /// that may act for end users (a backend acting for its own users); otherwise the service refuses it.
    /// </summary>
    public string? OwnerId { get; set; }

    /// <summary>
    /// The model the caller expects, reported as <see cref="Microsoft.Extensions.AI.ChatClientMetadata.DefaultModelId"/>.
    /// A deployment serves one model; <see cref="Microsoft.Extensions.AI.ChatOptions.ModelId"/> naming another is refused.
    /// </summary>
    public string? ModelId { get; set; }

    /// <summary>The deadline of each unary call (tokenizer, model card). Default 30 seconds; null for none.</summary>
    public TimeSpan? Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The deadline of a whole chat reply, from the request to its last token. Default null: none (cancel with the
    /// call's <see cref="CancellationToken"/> instead).
    /// </summary>
    public TimeSpan? ChatTimeout { get; set; }

    /// <summary>
    /// Retries of a call that fails with UNAVAILABLE (DialogueService unreachable, restarting, or draining), with
    /// exponential backoff from 250 ms. A chat reply is retried only before its first streamed event, so a reply
    /// is never generated twice. Default 2; 0 disables retries. Applies to channels this library creates.
    /// </summary>
    public int MaxRetries { get; set; } = 2;

    /// <summary>A copy, so that a client keeps the settings it was built with.</summary>
    internal ChatServicesClientOptions Clone() => (ChatServicesClientOptions)MemberwiseClone();
}
