using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace ChatServices.ServiceDefaults.Identity;

/// <summary>
/// The API key format: <c>csk_</c> followed by 32 random bytes in base64url. Keys are opaque to callers; services
/// keep only their SHA-256 (lowercase hex), never the key.
/// </summary>
public static class ApiKeyFormat
{
    public const string Prefix = "csk_";

    /// <summary>A new random key.</summary>
    public static string Generate() => Prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    /// <summary>The lowercase hex SHA-256 of a key: what is stored and configured.</summary>
    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>True for a token in the API key format (anything else with two dots is taken for a JWT).</summary>
    public static bool IsApiKey(string token) => token.StartsWith(Prefix, StringComparison.Ordinal);

    public static bool LooksLikeJwt(string token) => token.AsSpan().Count('.') == 2;
}

/// <summary>What a valid API key stands for.</summary>
/// <param name="KeyId">A name for the key that is safe to log (never the key or its full hash).</param>
public sealed record ApiKeyIdentity(string KeyId, string Owner, string Role);

/// <summary>
/// A source of API keys (configuration; DialogueService adds its database). The authentication handler asks each
/// registered source in turn with the key's SHA-256 (<see cref="ApiKeyFormat.Hash"/>); a source answers null for a
/// key it does not know, or one that is revoked or expired.
/// </summary>
public interface IApiKeyValidator
{
    ValueTask<ApiKeyIdentity?> ValidateAsync(string keySha256, CancellationToken cancellationToken);
}

/// <summary>
/// The keys in <c>Identity:ApiKeys</c>, held as SHA-256 hashes. A presented key's hash is compared with every entry
/// in constant time, so neither the comparison nor an early exit tells how much of a guess was right.
/// </summary>
public sealed class ConfiguredApiKeys : IApiKeyValidator
{
    private readonly (byte[] Hash, ApiKeyIdentity Identity)[] _entries;

    public ConfiguredApiKeys(IOptions<IdentityOptions> options)
    {
        _entries = [.. options.Value.ApiKeys.Select(Parse)];
    }

    public int Count => _entries.Length;

    public ValueTask<ApiKeyIdentity?> ValidateAsync(string keySha256, CancellationToken cancellationToken)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        if (Convert.FromHexString(keySha256, hash, out _, out var written) != System.Buffers.OperationStatus.Done || written != hash.Length)
            return ValueTask.FromResult<ApiKeyIdentity?>(null);
        ApiKeyIdentity? found = null;
        foreach (var (entryHash, identity) in _entries)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, entryHash) && found is null) found = identity;
        }
        return ValueTask.FromResult(found);
    }

    private static (byte[], ApiKeyIdentity) Parse(ConfiguredApiKey key, int index)
    {
        var name = $"{IdentityOptions.SectionName}:ApiKeys:{index}";
        byte[] hash;
        try
        {
            hash = Convert.FromHexString(key.Hash.Trim());
        }
        catch (FormatException)
        {
            hash = [];
        }
        if (hash.Length != SHA256.HashSizeInBytes) throw Invalid($"{name}:Hash must be the 64-hex-digit SHA-256 of the key.");
        if (string.IsNullOrWhiteSpace(key.Owner)) throw Invalid($"{name}:Owner is required.");
        if (!Roles.IsKnown(key.Role)) throw Invalid($"{name}:Role is '{key.Role}'; expected user, service or admin.");
        return (hash, new ApiKeyIdentity("config:" + Convert.ToHexStringLower(hash)[..12], key.Owner, key.Role));
    }

    private static OptionsValidationException Invalid(string message) =>
        new(IdentityOptions.SectionName, typeof(IdentityOptions), [message]);
}
