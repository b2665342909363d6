using System.Security.Claims;
using ChatServices.ServiceDefaults.Identity;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace ChatServices.EndToEnd.Tests.Infrastructure;

/// <summary>
/// The credentials of a test system: API keys made for the run (only their hashes reach the services) and JWTs
/// minted with a test signing key, as an organisation's identity provider would issue them.
/// </summary>
public static class TestCredentials
{
    public static readonly string DialogueServiceKey = ApiKeyFormat.Generate();
    public static readonly string BackendServiceKey = ApiKeyFormat.Generate();
    public static readonly string AliceKey = ApiKeyFormat.Generate();
    public static readonly string BobKey = ApiKeyFormat.Generate();
    public static readonly string AdminKey = ApiKeyFormat.Generate();

    public const string Issuer = "https://idp.example.test";
    public const string Audience = "chatservices";

    /// <summary>The identity provider's HMAC key, and one it never used.</summary>
    public static readonly byte[] SigningKey = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
    public static readonly byte[] ForeignKey = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);

    /// <summary>DialogueService's identity settings, as environment variables.</summary>
    public static void AddDialogueIdentity(Dictionary<string, string> environment)
    {
        (string Key, string Owner, string Role)[] keys =
        [
            (BackendServiceKey, "backend", Roles.Service),
            (AliceKey, "alice", Roles.User),
            (BobKey, "bob", Roles.User),
            (AdminKey, "operator", Roles.Admin),
        ];
        for (var i = 0; i < keys.Length; i++)
        {
            environment[$"Identity__ApiKeys__{i}__Hash"] = ApiKeyFormat.Hash(keys[i].Key);
            environment[$"Identity__ApiKeys__{i}__Owner"] = keys[i].Owner;
            environment[$"Identity__ApiKeys__{i}__Role"] = keys[i].Role;
        }
        environment["Identity__Jwt__Issuers__0"] = Issuer;
        environment["Identity__Jwt__Audiences__0"] = Audience;
        environment["Identity__Jwt__SigningKeys__0"] = Convert.ToBase64String(SigningKey);
    }

    /// <summary>A JWT for <paramref name="subject"/>; the optional arguments spoil one property at a time.</summary>
    public static string Jwt(string subject, string? role = null, string issuer = Issuer, string audience = Audience,
        byte[]? signingKey = null, TimeSpan? expiresIn = null)
    {
        var now = DateTime.UtcNow;
        var expires = now + (expiresIn ?? TimeSpan.FromMinutes(5));
        var claims = new Dictionary<string, object> { ["sub"] = subject };
        if (role is not null) claims["role"] = role;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            Claims = claims,
            IssuedAt = expires < now ? expires.AddMinutes(-10) : now,
            NotBefore = expires < now ? expires.AddMinutes(-10) : now,
            Expires = expires,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(signingKey ?? SigningKey), SecurityAlgorithms.HmacSha256),
        });
    }
}
