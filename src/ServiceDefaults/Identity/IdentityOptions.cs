namespace ChatServices.ServiceDefaults.Identity;

/// <summary>
/// Who may call a gRPC service (configuration section <c>Identity</c>, e.g. <c>Identity__ApiKeys__0__Hash</c>):
/// API keys given by their hash, JWT bearer settings, and the embedded single-machine default.
/// </summary>
public sealed class IdentityOptions
{
    public const string SectionName = "Identity";

    /// <summary>
    /// Serve calls from the loopback interface that carry no credential as <see cref="AnonymousOwnerId"/> (roles
    /// <c>user</c> and <c>admin</c>, never <c>service</c>: such a caller cannot act for other owners). Meant for the
    /// embedded single-machine default (<c>./run.sh</c>) only; logged loudly at start. Never turn it on behind a
    /// proxy or sidecar that connects from loopback.
    /// </summary>
    public bool AllowAnonymousOnLoopback { get; set; }

    /// <summary>The owner unauthenticated loopback callers act as.</summary>
    public string AnonymousOwnerId { get; set; } = "local";

    /// <summary>API keys accepted from configuration (bootstrapping an admin, service credentials between tiers).</summary>
    public List<ConfiguredApiKey> ApiKeys { get; set; } = [];

    /// <summary>JWT bearer tokens from an identity provider; off unless an authority or signing keys are set.</summary>
    public JwtOptions Jwt { get; set; } = new();
}

/// <summary>One configured API key: the lowercase hex SHA-256 of the key (never the key), its owner and role.</summary>
public sealed class ConfiguredApiKey
{
    /// <summary><c>printf %s "$KEY" | sha256sum</c>.</summary>
    public string Hash { get; set; } = "";

    /// <summary>The principal the key authenticates: the owner of the conversations it creates.</summary>
    public string Owner { get; set; } = "";

    /// <summary><c>user</c>, <c>service</c> or <c>admin</c>.</summary>
    public string Role { get; set; } = Roles.User;
}

/// <summary>
/// JWT bearer validation (Microsoft.AspNetCore.Authentication.JwtBearer): either an OIDC <see cref="Authority"/>
/// (discovery and signing keys fetched from it) or <see cref="SigningKeys"/> given here, plus the issuers and
/// audiences to accept. Lifetime is always validated.
/// </summary>
public sealed class JwtOptions
{
    /// <summary>OIDC issuer URL whose <c>/.well-known/openid-configuration</c> names the signing keys.</summary>
    public string? Authority { get; set; }

    /// <summary>Accepted <c>iss</c> values (required unless an authority supplies the issuer).</summary>
    public string[] Issuers { get; set; } = [];

    /// <summary>Accepted <c>aud</c> values (required).</summary>
    public string[] Audiences { get; set; } = [];

    /// <summary>
    /// Signing keys when there is no authority: a PEM public key (RSA or EC, <c>-----BEGIN PUBLIC KEY-----</c>) or
    /// a base64 symmetric key (HMAC, at least 32 bytes).
    /// </summary>
    public string[] SigningKeys { get; set; } = [];

    /// <summary>The claim that names the owner.</summary>
    public string OwnerClaim { get; set; } = "sub";

    /// <summary>The claim that carries roles (one value or an array).</summary>
    public string RoleClaim { get; set; } = "role";

    /// <summary>The role of a token that carries none.</summary>
    public string DefaultRole { get; set; } = Roles.User;

    /// <summary>Tolerated clock difference.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Require the authority's metadata over HTTPS (off only for tests).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    public bool IsConfigured => !string.IsNullOrWhiteSpace(Authority) || SigningKeys.Length > 0;
}

/// <summary>The roles ChatServices knows.</summary>
public static class Roles
{
    /// <summary>Own conversations, chat, tokenizer.</summary>
    public const string User = "user";

    /// <summary>Acts for end users (the Gateway): may name any <c>owner_id</c>.</summary>
    public const string Service = "service";

    /// <summary>Keys, usage, model information.</summary>
    public const string Admin = "admin";

    public static readonly IReadOnlyList<string> All = [User, Service, Admin];

    public static bool IsKnown(string role) => role is User or Service or Admin;
}
