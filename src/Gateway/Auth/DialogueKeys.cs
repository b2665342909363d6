using System.Collections.Concurrent;
using ChatServices.Gateway.Upstream;
using ChatServices.ServiceDefaults.Identity;
using Microsoft.Extensions.Options;

namespace ChatServices.Gateway.Auth;

/// <summary>
/// API keys kept in DialogueService's database (<c>csk_…</c> keys made with chat.v1.Admin or tools/Keys), validated
/// through DialogueService (chat.v1.Admin/ValidateKey, sending only the key's SHA-256) and cached for
/// <c>Gateway:KeyCacheSeconds</c>. That cache time is the revocation bound: a key revoked anywhere stops working
/// on every Gateway replica within it. Unknown keys are cached as unknown for the same time, so guessing costs
/// DialogueService one lookup per key and period.
/// </summary>
public sealed class DialogueKeys(DialogueUpstream upstream, IOptions<GatewayOptions> options, TimeProvider time)
{
    /// <summary>Entries kept at most; beyond it the cache starts over (a flood of random keys cannot grow it).</summary>
    private const int MaxEntries = 10_000;

    private readonly ConcurrentDictionary<string, Entry> _cache = new(StringComparer.Ordinal);
    private readonly TimeSpan _lifetime = TimeSpan.FromSeconds(Math.Max(0, options.Value.KeyCacheSeconds));

    /// <summary>The caller a database key belongs to, or null when it is unknown, revoked or expired.</summary>
    public async Task<Caller?> FindAsync(string presentedKey, CancellationToken cancellationToken)
    {
        if (!ApiKeyFormat.IsApiKey(presentedKey)) return null;
        var hash = ApiKeyFormat.Hash(presentedKey);
        if (_cache.TryGetValue(hash, out var cached) && time.GetElapsedTime(cached.FetchedAt) < _lifetime) return cached.Caller;

        var key = await upstream.ValidateKeyAsync(hash, cancellationToken);
        var defaults = options.Value.DefaultLimits;
        var caller = key is null ? null : new Caller(key.OwnerId, "key:" + key.Id,
            key.RequestsPerMinute > 0 ? key.RequestsPerMinute : defaults.RequestsPerMinute,
            key.TokensPerMinute > 0 ? key.TokensPerMinute : defaults.TokensPerMinute,
            Anonymous: false, key.Role);
        if (_lifetime > TimeSpan.Zero)
        {
            if (_cache.Count >= MaxEntries) _cache.Clear();
            _cache[hash] = new Entry(caller, time.GetTimestamp());
        }
        return caller;
    }

    private sealed record Entry(Caller? Caller, long FetchedAt);
}
