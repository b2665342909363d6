using System.Runtime.InteropServices;
using ChatServices.InferenceService.Engine.KvCache;

namespace ChatServices.InferenceService.Engine.PrefixCache;

/// <summary>A prefix of a prompt whose KV already sits in a slot.</summary>
/// <param name="Slot">The slot holding it.</param>
/// <param name="Tokens">How many leading prompt tokens it covers.</param>
/// <param name="Parked">Whether the slot is parked here (adoptable) or belongs to a running sequence (copy only).</param>
public readonly record struct PrefixMatch(KvSlot Slot, int Tokens, bool Parked);

/// <summary>
/// Keeps the KV of finished sequences (their slots, "parked") so that a later prompt starting with the same tokens
/// — the next turn of a conversation re-sends the whole history; many prompts share a system prompt — reuses it
/// instead of recomputing. Parked slots are evicted least recently used first, and always before a running
/// sequence is preempted. The cache only chooses; the scheduler adopts a parked slot or copies a prefix.
/// </summary>
public sealed class PrefixCache(KvCachePool pool)
{
    // Most recently used last.
    private readonly LinkedList<KvSlot> _parked = new();

    public int ParkedSlots => _parked.Count;
    public long Lookups { get; private set; }
    public long Hits { get; private set; }
    public long HitTokens { get; private set; }

    public void Park(KvSlot slot)
    {
        if (slot.Length == 0) { pool.Release(slot); return; }
        _parked.AddLast(slot);
    }

    /// <summary>Frees the least recently used parked slot, other than <paramref name="keep"/>.</summary>
    public bool TryEvict(KvSlot? keep = null)
    {
        for (var node = _parked.First; node is not null; node = node.Next)
        {
            if (node.Value == keep) continue;
            _parked.Remove(node);
            pool.Release(node.Value);
            return true;
        }
        return false;
    }

    /// <summary>Removes a parked slot from the cache: its new owner takes it.</summary>
    public void Take(KvSlot slot) => _parked.Remove(slot);

    /// <summary>
    /// The longest prefix of <paramref name="tokens"/> held by a parked slot or by <paramref name="running"/>
    /// slots, capped at <paramref name="usable"/>. Invariant enforced by callers through the cap: when a whole
    /// prompt is cached, its last token is still recomputed, because its logits are needed to sample from.
    /// </summary>
    public PrefixMatch? FindLongest(ReadOnlySpan<int> tokens, int usable, IEnumerable<KvSlot> running)
    {
        PrefixMatch? best = null;
        for (var node = _parked.Last; node is not null; node = node.Previous)
            Consider(node.Value, parked: true, tokens, usable, ref best);
        foreach (var slot in running) Consider(slot, parked: false, tokens, usable, ref best);
        return best;
    }

    /// <summary>Counts an admitted prompt: a lookup, and a hit of <paramref name="tokens"/> when it reused any.</summary>
    public void Record(PrefixMatch? used)
    {
        Lookups++;
        if (used is not { } hit) return;
        Hits++;
        HitTokens += hit.Tokens;
        if (hit.Parked && _parked.Remove(hit.Slot))
            _parked.AddLast(hit.Slot); // copied from: most recently used now
    }

    public void Clear()
    {
        while (TryEvict()) { }
    }

    private static void Consider(KvSlot slot, bool parked, ReadOnlySpan<int> tokens, int usable, ref PrefixMatch? best)
    {
        var common = Math.Min(CollectionsMarshal.AsSpan(slot.Tokens).CommonPrefixLength(tokens), usable);
        // Prefer the longer match; on a tie prefer a parked slot (it can be adopted without a copy).
        if (common > 0 && (best is null || common > best.Value.Tokens || (common == best.Value.Tokens && parked && !best.Value.Parked)))
            best = new PrefixMatch(slot, common, parked);
    }
}
