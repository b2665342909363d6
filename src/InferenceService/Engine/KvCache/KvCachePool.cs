using System.Buffers;
using System.Runtime.InteropServices;

namespace ChatServices.InferenceService.Engine.KvCache;

/// <summary>The shape of one model's KV cache.</summary>
public readonly record struct KvCacheGeometry(int Layers, int KvHeads, int HeadSize, int ElementSize)
{
    /// <summary>Bytes of K plus V, all layers, for one token.</summary>
    public long BytesPerToken => 2L * Layers * KvHeads * HeadSize * ElementSize;
}

/// <summary>
/// A handle on one slot of the pool: room for <see cref="KvCachePool.SlotCapacity"/> tokens of KV in every layer.
/// <see cref="Tokens"/> are the token ids whose KV the slot holds, in order (position i holds token i), which is
/// what the prefix cache matches prompts against. The pool may move a slot's contents to another physical index
/// (<see cref="Index"/> changes); holders keep the handle, never the index.
/// </summary>
public sealed class KvSlot
{
    internal KvSlot(int index) => Index = index;

    /// <summary>Physical slot index: the row this slot occupies in the pool's buffers.</summary>
    public int Index { get; internal set; }

    /// <summary>Token ids whose KV is stored, position by position. Count ≤ slot capacity.</summary>
    public List<int> Tokens { get; } = [];

    public int Length => Tokens.Count;

    public bool InUse { get; internal set; }

    /// <summary>Forgets the KV after <paramref name="length"/> tokens (the memory is simply overwritten later).</summary>
    public void Truncate(int length)
    {
        if (length < Tokens.Count) Tokens.RemoveRange(length, Tokens.Count - length);
    }
}

/// <summary>
/// The KV-cache pool: all KV memory, preallocated once from a budget, divided into fixed slots.
/// Layout per layer, for K and for V: one buffer <c>[slots, kv_heads, slot_capacity, head_size]</c>. A batch of B
/// sequences whose slots sit at indices 0..B-1 is therefore a contiguous prefix of every buffer, which the decoder
/// binds as both past and present (GroupQueryAttention's shared past/present buffer): a step appends each sequence's
/// new KV in place and nothing else is copied.
/// Invariants: memory is allocated only in the constructor; a slot is held by at most one owner; moving KV between
/// slots copies only the tokens a slot holds, never a whole buffer.
/// </summary>
public sealed unsafe class KvCachePool : IDisposable
{
    private readonly byte*[] _keys;
    private readonly byte*[] _values;
    private readonly KvSlot[] _byIndex;
    private readonly Stack<KvSlot> _free = new();
    private readonly long _slotBytesPerLayer;
    private readonly long _tokenBytesPerHead;

    public KvCachePool(KvCacheGeometry geometry, int slotCount, int slotCapacity)
    {
        if (slotCount < 1) throw new ArgumentOutOfRangeException(nameof(slotCount), "The KV-cache budget does not hold a single slot.");
        Geometry = geometry;
        SlotCount = slotCount;
        SlotCapacity = slotCapacity;
        _tokenBytesPerHead = (long)geometry.HeadSize * geometry.ElementSize;
        _slotBytesPerLayer = geometry.KvHeads * slotCapacity * _tokenBytesPerHead;
        var layerBytes = (nuint)(_slotBytesPerLayer * slotCount);
        _keys = new byte*[geometry.Layers];
        _values = new byte*[geometry.Layers];
        for (var l = 0; l < geometry.Layers; l++)
        {
            // Zeroed so that rows a step never writes (padding) hold finite numbers.
            _keys[l] = (byte*)NativeMemory.AlignedAlloc(layerBytes, 64);
            _values[l] = (byte*)NativeMemory.AlignedAlloc(layerBytes, 64);
            NativeMemory.Clear(_keys[l], layerBytes);
            NativeMemory.Clear(_values[l], layerBytes);
        }
        _byIndex = new KvSlot[slotCount];
        for (var i = slotCount - 1; i >= 0; i--) _free.Push(_byIndex[i] = new KvSlot(i));
    }

    /// <summary>How many slots a budget holds for a model, each of <paramref name="slotCapacity"/> tokens.</summary>
    public static int SlotsForBudget(KvCacheGeometry geometry, long budgetBytes, int slotCapacity) =>
        (int)Math.Min(int.MaxValue, budgetBytes / (geometry.BytesPerToken * slotCapacity));

    public KvCacheGeometry Geometry { get; }
    public int SlotCount { get; }
    public int SlotCapacity { get; }
    public int FreeSlots => _free.Count;
    public long TotalBytes => _slotBytesPerLayer * SlotCount * 2 * Geometry.Layers;

    /// <summary>Tokens held by slots in use (running sequences and cached prefixes).</summary>
    public long UsedTokens
    {
        get
        {
            long used = 0;
            foreach (var slot in _byIndex) if (slot.InUse) used += slot.Length;
            return used;
        }
    }

    /// <summary>Bytes of one slot in one layer's K (or V) buffer: the stride between batch rows.</summary>
    public long SlotBytesPerLayer => _slotBytesPerLayer;

    public nint KeyBuffer(int layer) => (nint)_keys[layer];
    public nint ValueBuffer(int layer) => (nint)_values[layer];

    public bool TryAcquire(out KvSlot slot)
    {
        if (_free.TryPop(out slot!))
        {
            slot.InUse = true;
            slot.Tokens.Clear();
            return true;
        }
        return false;
    }

    public void Release(KvSlot slot)
    {
        if (!slot.InUse) throw new InvalidOperationException("Slot released twice.");
        slot.InUse = false;
        slot.Tokens.Clear();
        _free.Push(slot);
    }

    /// <summary>Copies the first <paramref name="tokens"/> positions of <paramref name="from"/> into <paramref name="to"/>.</summary>
    public void CopyPrefix(KvSlot from, KvSlot to, int tokens)
    {
        if (tokens > from.Length) throw new ArgumentOutOfRangeException(nameof(tokens));
        var bytes = tokens * _tokenBytesPerHead;
        if (bytes > 0)
            for (var l = 0; l < Geometry.Layers; l++)
            for (var h = 0; h < Geometry.KvHeads; h++)
            {
                Buffer.MemoryCopy(At(_keys[l], from.Index, h), At(_keys[l], to.Index, h), bytes, bytes);
                Buffer.MemoryCopy(At(_values[l], from.Index, h), At(_values[l], to.Index, h), bytes, bytes);
            }
        to.Tokens.Clear();
        for (var i = 0; i < tokens; i++) to.Tokens.Add(from.Tokens[i]);
    }

    /// <summary>
    /// Moves slots so that <paramref name="slots"/> occupy physical indices 0..n-1 (in any order), which a batched
    /// step needs. See <see cref="ArrangeAt"/>.
    /// </summary>
    public void ArrangeAsPrefix(IReadOnlyList<KvSlot> slots) => ArrangeAt(slots, 0);

    /// <summary>
    /// Moves slots so that <paramref name="slots"/> occupy physical indices first..first+n-1 (in any order). Slots
    /// already inside that range stay; each one outside swaps contents with whatever holds a free index in the range
    /// (a free slot, a cached prefix, another running sequence). Cost: the tokens of the swapped slots, only when the
    /// batch's membership changed.
    /// </summary>
    public void ArrangeAt(IReadOnlyList<KvSlot> slots, int first)
    {
        var n = slots.Count;
        if (first < 0 || first + n > SlotCount) throw new ArgumentOutOfRangeException(nameof(first));
        Span<bool> taken = n <= 1024 ? stackalloc bool[n] : new bool[n];
        foreach (var s in slots) if (s.Index >= first && s.Index < first + n) taken[s.Index - first] = true;
        var hole = 0;
        foreach (var s in slots)
        {
            if (s.Index >= first && s.Index < first + n) continue;
            while (taken[hole]) hole++;
            Swap(s, _byIndex[first + hole]);
            taken[hole] = true;
        }
    }

    private void Swap(KvSlot a, KvSlot b)
    {
        var tokens = Math.Max(a.InUse ? a.Length : 0, b.InUse ? b.Length : 0);
        var bytes = (int)(tokens * _tokenBytesPerHead);
        if (bytes > 0)
        {
            var temp = ArrayPool<byte>.Shared.Rent(bytes);
            try
            {
                fixed (byte* t = temp)
                    for (var l = 0; l < Geometry.Layers; l++)
                    for (var h = 0; h < Geometry.KvHeads; h++)
                    {
                        SwapBytes(At(_keys[l], a.Index, h), At(_keys[l], b.Index, h), t, bytes);
                        SwapBytes(At(_values[l], a.Index, h), At(_values[l], b.Index, h), t, bytes);
                    }
            }
            finally { ArrayPool<byte>.Shared.Return(temp); }
        }
        (a.Index, b.Index) = (b.Index, a.Index);
        _byIndex[a.Index] = a;
        _byIndex[b.Index] = b;
    }

    private static void SwapBytes(byte* x, byte* y, byte* temp, int bytes)
    {
        Buffer.MemoryCopy(x, temp, bytes, bytes);
        Buffer.MemoryCopy(y, x, bytes, bytes);
        Buffer.MemoryCopy(temp, y, bytes, bytes);
    }

    private byte* At(byte* layer, int slot, int head) => layer + slot * _slotBytesPerLayer + head * SlotCapacity * _tokenBytesPerHead;

    public void Dispose()
    {
        for (var l = 0; l < Geometry.Layers; l++)
        {
            if (_keys[l] != null) NativeMemory.AlignedFree(_keys[l]);
            if (_values[l] != null) NativeMemory.AlignedFree(_values[l]);
            _keys[l] = _values[l] = null;
        }
    }
}
