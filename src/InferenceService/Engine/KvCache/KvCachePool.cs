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
    private readonly KvCachePool _pool;

    internal KvSlot(int index, KvCachePool pool) => (Index, _pool) = (index, pool);

    /// <summary>Physical slot index: the row this slot occupies in the pool's buffers.</summary>
    public int Index { get; internal set; }

    /// <summary>Token ids whose KV is stored, position by position. Count ≤ slot capacity.</summary>
    public List<int> Tokens { get; } = [];

    public int Length => Tokens.Count;

    public bool InUse { get; internal set; }

    /// <summary>Forgets the KV after <paramref name="length"/> tokens and gives its memory back.</summary>
    public void Truncate(int length)
    {
        if (length >= Tokens.Count) return;
        Tokens.RemoveRange(length, Tokens.Count - length);
        _pool.Decommit(this, length);
    }
}

/// <summary>
/// The KV-cache pool: KV memory for a fixed number of slots, with physical memory only for the tokens slots hold.
/// Layout per layer, for K and for V: one buffer <c>[slots, kv_heads, slot_capacity, head_size]</c>. A batch of B
/// sequences whose slots sit at indices 0..B-1 is therefore a contiguous prefix of every buffer, which the decoder
/// binds as both past and present (GroupQueryAttention's shared past/present buffer): a step appends each sequence's
/// new KV in place and nothing else is copied.
/// On Linux the buffers are reserved as virtual memory (anonymous mmap, no swap reservation): a page becomes
/// physical memory when a step first writes KV into it and is given back (madvise MADV_DONTNEED, reading as zeros
/// again) when its slot is released, truncated, or swapped to hold fewer tokens. So a slot costs memory for the
/// tokens it holds, rounded up to a page per head (<see cref="TokensPerPage"/>), not for its capacity, and admission
/// is bounded by <see cref="TokenBudget"/>, the tokens the memory budget holds. Elsewhere the buffers are allocated
/// whole (zeroed) and the same token accounting applies.
/// Invariants: a slot is held by at most one owner; moving KV between slots copies only the tokens a slot holds,
/// never a whole buffer; <see cref="HeldTokens"/> counts the slots in use (running and cached), page-rounded.
/// </summary>
public sealed unsafe class KvCachePool : IDisposable
{
    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20, MapNoReserve = 0x4000, MadvDontNeed = 4;

    private readonly byte*[] _keys;
    private readonly byte*[] _values;
    private readonly KvSlot[] _byIndex;
    private readonly Stack<KvSlot> _free = new();
    private readonly long _slotBytesPerLayer;
    private readonly long _tokenBytesPerHead;
    private readonly byte* _mapping;
    private readonly nuint _mappingBytes;
    private readonly long _pageSize = Environment.SystemPageSize;

    /// <param name="geometry">The model's KV shape.</param>
    /// <param name="slotCount">Slots (sequences held at once, running or cached).</param>
    /// <param name="slotCapacity">Tokens one slot holds at most.</param>
    /// <param name="tokenBudget">Tokens all slots may hold together (page-rounded); null: every slot full.</param>
    public KvCachePool(KvCacheGeometry geometry, int slotCount, int slotCapacity, long? tokenBudget = null)
    {
        if (slotCount < 1) throw new ArgumentOutOfRangeException(nameof(slotCount), "The KV-cache budget does not hold a single slot.");
        Geometry = geometry;
        SlotCount = slotCount;
        SlotCapacity = slotCapacity;
        _tokenBytesPerHead = (long)geometry.HeadSize * geometry.ElementSize;
        _slotBytesPerLayer = geometry.KvHeads * slotCapacity * _tokenBytesPerHead;
        TokensPerPage = (int)Math.Max(1, _pageSize / _tokenBytesPerHead);
        TokenBudget = tokenBudget ?? (long)slotCount * slotCapacity;
        var layerBytes = (nuint)(_slotBytesPerLayer * slotCount);
        // Each buffer starts on a page so that a slot's pages are its own.
        var stride = (layerBytes + (nuint)_pageSize - 1) / (nuint)_pageSize * (nuint)_pageSize;
        _keys = new byte*[geometry.Layers];
        _values = new byte*[geometry.Layers];
        if (OperatingSystem.IsLinux())
        {
            _mappingBytes = stride * (nuint)(2 * geometry.Layers);
            var address = Mmap(0, _mappingBytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
            if (address == -1)
                throw new InsufficientMemoryException($"Reserving {_mappingBytes >> 20} MiB of address space for the KV cache failed (errno {Marshal.GetLastPInvokeError()}).");
            _mapping = (byte*)address;
            VirtualMemory = true;
        }
        for (var l = 0; l < geometry.Layers; l++)
        {
            if (VirtualMemory)
            {
                _keys[l] = _mapping + (nuint)(2 * l) * stride;
                _values[l] = _mapping + (nuint)(2 * l + 1) * stride;
                continue;
            }
            // Zeroed so that rows a step never writes (padding) hold finite numbers.
            _keys[l] = (byte*)NativeMemory.AlignedAlloc(layerBytes, 64);
            _values[l] = (byte*)NativeMemory.AlignedAlloc(layerBytes, 64);
            NativeMemory.Clear(_keys[l], layerBytes);
            NativeMemory.Clear(_values[l], layerBytes);
        }
        _byIndex = new KvSlot[slotCount];
        for (var i = slotCount - 1; i >= 0; i--) _free.Push(_byIndex[i] = new KvSlot(i, this));
    }

    /// <summary>Whether the buffers are reserved address space committed page by page (Linux), not allocated whole.</summary>
    public bool VirtualMemory { get; }

    /// <summary>Tokens all slots in use may hold together (page-rounded, <see cref="HeldTokens"/>).</summary>
    public long TokenBudget { get; }

    /// <summary>Tokens of one head's KV per memory page: the granularity at which a slot's memory grows.</summary>
    public int TokensPerPage { get; }

    /// <summary>How many slots a budget holds for a model, each of <paramref name="slotCapacity"/> tokens.</summary>
    public static int SlotsForBudget(KvCacheGeometry geometry, long budgetBytes, int slotCapacity) =>
        (int)Math.Min(int.MaxValue, budgetBytes / (geometry.BytesPerToken * slotCapacity));

    public KvCacheGeometry Geometry { get; }
    public int SlotCount { get; }
    public int SlotCapacity { get; }
    public int FreeSlots => _free.Count;
    /// <summary>Bytes of every slot at full capacity: the address space reserved (allocated, without virtual memory).</summary>
    public long TotalBytes => _slotBytesPerLayer * SlotCount * 2 * Geometry.Layers;

    /// <summary>Bytes the token budget stands for.</summary>
    public long BudgetBytes => TokenBudget * Geometry.BytesPerToken;

    /// <summary>Tokens the slots in use hold, each slot rounded up to whole pages: what admission counts.</summary>
    public long HeldTokens
    {
        get
        {
            long held = 0;
            foreach (var slot in _byIndex) if (slot.InUse) held += RoundToPage(slot.Length);
            return held;
        }
    }

    /// <summary>Tokens a slot holding <paramref name="tokens"/> counts for (whole pages).</summary>
    public long RoundToPage(long tokens) => (tokens + TokensPerPage - 1) / TokensPerPage * TokensPerPage;

    /// <summary>Whether <paramref name="tokens"/> more (page-rounded) fit in the budget beside what is held.</summary>
    public bool Fits(long tokens) => HeldTokens + tokens <= TokenBudget;

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
        Decommit(slot, 0);
        _free.Push(slot);
    }

    /// <summary>
    /// Gives back the physical memory of <paramref name="slot"/>'s positions from <paramref name="keep"/> on (whole
    /// pages only; they read as zeros afterwards). Without virtual memory nothing changes.
    /// </summary>
    internal void Decommit(KvSlot slot, int keep)
    {
        if (!VirtualMemory) return;
        var from = RoundToPage(keep) * _tokenBytesPerHead;
        var headBytes = SlotCapacity * _tokenBytesPerHead;
        if (from >= headBytes) return;
        for (var l = 0; l < Geometry.Layers; l++)
        {
            if (keep == 0)
            {
                // The whole slot: one range per buffer.
                Advise(_keys[l] + slot.Index * _slotBytesPerLayer, _slotBytesPerLayer);
                Advise(_values[l] + slot.Index * _slotBytesPerLayer, _slotBytesPerLayer);
                continue;
            }
            for (var h = 0; h < Geometry.KvHeads; h++)
            {
                Advise(At(_keys[l], slot.Index, h) + from, headBytes - from);
                Advise(At(_values[l], slot.Index, h) + from, headBytes - from);
            }
        }
    }

    /// <summary>MADV_DONTNEED on the whole pages inside [start, start + bytes).</summary>
    private void Advise(byte* start, long bytes)
    {
        var first = ((long)start + _pageSize - 1) / _pageSize * _pageSize;
        var end = ((long)start + bytes) / _pageSize * _pageSize;
        if (end > first && Madvise((nint)first, (nuint)(end - first), MadvDontNeed) != 0)
            throw new InvalidOperationException($"madvise failed (errno {Marshal.GetLastPInvokeError()}).");
    }

    [DllImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static extern nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [DllImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static extern int Munmap(nint address, nuint length);

    [DllImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static extern int Madvise(nint address, nuint length, int advice);

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
        var stale = to.Length;
        to.Tokens.Clear();
        for (var i = 0; i < tokens; i++) to.Tokens.Add(from.Tokens[i]);
        if (stale > tokens) Decommit(to, tokens);
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
        // Each now sits where the other's longer KV was copied: give back what lies past its own tokens.
        if (tokens > 0)
        {
            Decommit(a, a.InUse ? a.Length : 0);
            Decommit(b, b.InUse ? b.Length : 0);
        }
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
        if (VirtualMemory)
        {
            if (_keys[0] != null) Munmap((nint)_mapping, _mappingBytes);
            Array.Clear(_keys);
            Array.Clear(_values);
            return;
        }
        for (var l = 0; l < Geometry.Layers; l++)
        {
            if (_keys[l] != null) NativeMemory.AlignedFree(_keys[l]);
            if (_values[l] != null) NativeMemory.AlignedFree(_values[l]);
            _keys[l] = _values[l] = null;
        }
    }
}
