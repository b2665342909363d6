using System.Text;

namespace ChatServices.DialogueService.Inference;

/// <summary>One InferenceService replica and the generations this process has in flight on it.</summary>
public sealed class InferenceEndpoint
{
    private int _outstanding;

    internal InferenceEndpoint(Uri address)
    {
        Address = address;
        AddressKey = address.GetLeftPart(UriPartial.Authority);
    }

    public Uri Address { get; }

    /// <summary>Scheme, host and port: what affinity hashes, and the key per-replica state is kept under.</summary>
    internal string AddressKey { get; }

    /// <summary>Generations this process has started on the replica and not yet seen end.</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>Counts a generation as outstanding until the returned handle is disposed.</summary>
    public IDisposable Track()
    {
        Interlocked.Increment(ref _outstanding);
        return new Release(this);
    }

    public override string ToString() => AddressKey;

    private sealed class Release(InferenceEndpoint endpoint) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) Interlocked.Decrement(ref endpoint._outstanding);
        }
    }
}

/// <summary>
/// Chooses the InferenceService replica for each generation: the least loaded one (fewest outstanding
/// generations from this process), except that a conversation goes back to the replica that served it before —
/// the one that holds its history in its prefix cache — as long as that replica is not much busier than the
/// least loaded one.
/// </summary>
/// <remarks>
/// Affinity uses rendezvous hashing (highest score of hash(conversation, replica)) with a hash that is the same
/// in every process, so all DialogueService replicas send a conversation to the same InferenceService replica,
/// and adding or removing a replica moves only the conversations that hashed to it.
/// "Much busier" is more than <see cref="AffinitySlack"/> outstanding generations above the least loaded.
/// Thread-safe; picking is lock-free and allocation-free apart from the endpoint list swap on updates.
/// </remarks>
public sealed class InferenceEndpointPicker
{
    private readonly Lock _updateLock = new();
    private volatile InferenceEndpoint[] _endpoints = [];

    public InferenceEndpointPicker(IEnumerable<Uri> addresses, int affinitySlack = 2)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(affinitySlack);
        AffinitySlack = affinitySlack;
        Update(addresses);
    }

    public int AffinitySlack { get; }

    public IReadOnlyList<InferenceEndpoint> Endpoints => _endpoints;

    /// <summary>
    /// Replaces the set of replicas (after a DNS refresh, say). Replicas still present keep their state, so
    /// their outstanding counts stay right.
    /// </summary>
    public void Update(IEnumerable<Uri> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        lock (_updateLock)
        {
            var current = _endpoints.ToDictionary(e => e.AddressKey);
            var next = new List<InferenceEndpoint>();
            foreach (var address in addresses)
            {
                var key = address.GetLeftPart(UriPartial.Authority);
                if (next.Any(e => e.AddressKey == key)) continue;
                next.Add(current.TryGetValue(key, out var kept) ? kept : new InferenceEndpoint(address));
            }
            _endpoints = [.. next];
        }
    }

    /// <summary>
    /// The replica for the next generation, or null when none is usable.
    /// </summary>
    /// <param name="affinityKey">The conversation id, or null for a request with no conversation.</param>
    /// <param name="isUsable">False for replicas to avoid (an open circuit breaker).</param>
    /// <param name="exclude">Replicas already tried for this request.</param>
    public InferenceEndpoint? Pick(string? affinityKey, Func<InferenceEndpoint, bool>? isUsable = null, IReadOnlyCollection<InferenceEndpoint>? exclude = null)
    {
        var endpoints = _endpoints;
        InferenceEndpoint? least = null, preferred = null;
        ulong bestScore = 0;
        var keyHash = affinityKey is null ? 0 : Fnv1a(Fnv1aOffset, affinityKey);

        foreach (var e in endpoints)
        {
            if (exclude is not null && exclude.Contains(e)) continue;
            if (isUsable is not null && !isUsable(e)) continue;
            if (least is null || e.Outstanding < least.Outstanding) least = e;
            if (affinityKey is null) continue;
            var score = Mix(Fnv1a(keyHash, e.AddressKey));
            if (preferred is null || score > bestScore)
            {
                preferred = e;
                bestScore = score;
            }
        }

        if (preferred is not null && preferred.Outstanding <= least!.Outstanding + AffinitySlack) return preferred;
        return least;
    }

    private const ulong Fnv1aOffset = 14695981039346656037UL;

    private static ulong Fnv1a(ulong hash, string text)
    {
        Span<byte> buffer = stackalloc byte[256];
        var bytes = Encoding.UTF8.GetByteCount(text) <= buffer.Length ? buffer[..Encoding.UTF8.GetBytes(text, buffer)] : Encoding.UTF8.GetBytes(text);
        foreach (var b in bytes)
        {
            hash ^= b;
            hash *= 1099511628211UL;
        }
        return hash;
    }

    // A final avalanche step (SplitMix64's) so that scores of similar keys are not correlated.
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
