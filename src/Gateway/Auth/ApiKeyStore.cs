using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace ChatServices.Gateway.Auth;

/// <summary>
/// The configured API keys (<c>Gateway:ApiKeys</c>), held only as SHA-256 hashes. A presented key is hashed and
/// compared with every stored hash in constant time, so neither the comparison nor an early exit tells an
/// attacker how much of a guess was right.
/// </summary>
public sealed class ApiKeyStore
{
    private readonly Entry[] _entries;
    private readonly GatewayOptions _options;

    public ApiKeyStore(IOptions<GatewayOptions> options)
    {
        _options = options.Value;
        _entries = _options.ApiKeys.Select(Parse).ToArray();
    }

    public int Count => _entries.Length;

    /// <summary>The caller a key belongs to, or null when it matches none.</summary>
    public Caller? Find(string presentedKey)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        var keyBytes = Encoding.UTF8.GetBytes(presentedKey);
        SHA256.HashData(keyBytes, hash);
        Caller? found = null;
        // Every entry is compared, match or not: the time taken does not depend on which entry matched.
        foreach (var entry in _entries)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, entry.Hash) && found is null)
            {
                found = entry.Caller;
            }
        }
        return found;
    }

    public Caller Anonymous() => new(
        _options.AnonymousOwnerId, "anonymous", _options.DefaultLimits.RequestsPerMinute, _options.DefaultLimits.TokensPerMinute, Anonymous: true);

    private Entry Parse(ApiKeyOptions key, int index)
    {
        byte[] hash;
        try
        {
            hash = Convert.FromHexString(key.Hash.Trim());
        }
        catch (FormatException)
        {
            hash = [];
        }
        if (hash.Length != SHA256.HashSizeInBytes)
        {
            throw new OptionsValidationException(GatewayOptions.SectionName, typeof(GatewayOptions),
                [$"Gateway:ApiKeys:{index}:Hash must be the 64-hex-digit SHA-256 of the key."]);
        }
        if (string.IsNullOrWhiteSpace(key.OwnerId))
        {
            throw new OptionsValidationException(GatewayOptions.SectionName, typeof(GatewayOptions),
                [$"Gateway:ApiKeys:{index}:OwnerId is required."]);
        }
        // The partition names the key by a prefix of its hash: enough to tell keys apart in logs and limits.
        var caller = new Caller(key.OwnerId, "key:" + Convert.ToHexStringLower(hash)[..12],
            key.RequestsPerMinute ?? _options.DefaultLimits.RequestsPerMinute,
            key.TokensPerMinute ?? _options.DefaultLimits.TokensPerMinute,
            Anonymous: false);
        return new Entry(hash, caller);
    }

    private sealed record Entry(byte[] Hash, Caller Caller);
}
