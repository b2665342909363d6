namespace ChatServices.Gateway;

/// <summary>
/// The <c>Gateway</c> configuration section: where DialogueService is, who may call, and how much.
/// </summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Gateway";

    /// <summary>DialogueService's gRPC endpoint (cleartext HTTP/2).</summary>
    public string DialogueEndpoint { get; set; } = "http://127.0.0.1:50051";

    /// <summary>
    /// Several equivalent DialogueService replicas; when set, used instead of <see cref="DialogueEndpoint"/>.
    /// Calls are spread round-robin and fail over to another replica when one cannot be reached.
    /// </summary>
    public string[] DialogueEndpoints { get; set; } = [];

    /// <summary>The endpoints in effect: <see cref="DialogueEndpoints"/>, or else the one <see cref="DialogueEndpoint"/>.</summary>
    public IReadOnlyList<string> DialogueEndpointList => DialogueEndpoints.Length > 0 ? DialogueEndpoints : [DialogueEndpoint];

    /// <summary>
    /// The Gateway's own credential for DialogueService: an API key with role <c>service</c> (from a secret), which
    /// lets it act for the end users it authenticated. None on the loopback default.
    /// </summary>
    public string? DialogueApiKey { get; set; }

    /// <summary>Deadline of unary upstream calls (conversation management, model info).</summary>
    public TimeSpan UpstreamTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long the Gateway trusts DialogueService's answer about a database key (<c>csk_…</c>): the bound within
    /// which a revoked key stops working on every Gateway replica. 0: ask on every request.
    /// </summary>
    public int KeyCacheSeconds { get; set; } = 10;

    /// <summary>
    /// API keys from configuration (bootstrapping, before any key is in the database), each stored as the SHA-256 of
    /// the key (never the key itself). Keys in DialogueService's database are checked after these.
    /// </summary>
    public List<ApiKeyOptions> ApiKeys { get; set; } = [];

    /// <summary>
    /// Serve requests from the loopback interface that carry no valid key, as <see cref="AnonymousOwnerId"/>.
    /// Meant for the embedded single-machine default only; logged loudly at start.
    /// </summary>
    public bool AllowAnonymousOnLoopback { get; set; }

    /// <summary>The owner id anonymous loopback requests act as (their conversations belong to it).</summary>
    public string AnonymousOwnerId { get; set; } = "local";

    /// <summary>Limits for anonymous callers and for keys that set none of their own.</summary>
    public RateLimitOptions DefaultLimits { get; set; } = new();

    /// <summary>Largest request body accepted, in bytes; larger bodies are answered 413.</summary>
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Most messages one chat request may carry.</summary>
    public int MaxMessages { get; set; } = 256;

    /// <summary>
    /// While a streamed reply waits for its first token (queued for the engine, or its prompt being prefilled), an
    /// SSE comment line is sent this often so that proxies and load balancers do not cut the idle connection.
    /// Zero turns it off.
    /// </summary>
    public TimeSpan SseKeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Origins allowed to call the API from a browser on another origin (CORS). Empty: none; "*": any.</summary>
    public string[] CorsOrigins { get; set; } = [];
}

/// <summary>One API key: the lowercase hex SHA-256 of the key, the owner it acts as, and its limits.</summary>
public sealed class ApiKeyOptions
{
    public string Hash { get; set; } = "";

    public string OwnerId { get; set; } = "";

    /// <summary>Requests per minute; null: <see cref="GatewayOptions.DefaultLimits"/>.</summary>
    public int? RequestsPerMinute { get; set; }

    /// <summary>Prompt plus completion tokens per minute; null: <see cref="GatewayOptions.DefaultLimits"/>.</summary>
    public int? TokensPerMinute { get; set; }
}

public sealed class RateLimitOptions
{
    /// <summary>Requests per minute; 0: unlimited.</summary>
    public int RequestsPerMinute { get; set; } = 120;

    /// <summary>Prompt plus completion tokens per minute; 0: unlimited.</summary>
    public int TokensPerMinute { get; set; } = 200_000;
}
