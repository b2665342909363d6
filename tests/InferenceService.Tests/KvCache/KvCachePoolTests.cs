using System.Runtime.InteropServices;
using ChatServices.InferenceService.Engine.KvCache;

namespace ChatServices.InferenceService.Tests.KvCache;

/// <summary>The pool keeps each slot's KV intact while it moves slots and copies prefixes.</summary>
public sealed unsafe class KvCachePoolTests
{
    private static readonly KvCacheGeometry Geometry = new(Layers: 2, KvHeads: 2, HeadSize: 4, ElementSize: 4);

    [Fact]
    public void Slots_for_budget_divides_the_budget_by_the_bytes_of_one_slot()
    {
        // 2 (K,V) · 2 layers · 2 heads · 4 dims · 4 bytes = 128 bytes per token; 10 tokens per slot = 1280 bytes.
        Assert.Equal(128, Geometry.BytesPerToken);
        Assert.Equal(3, KvCachePool.SlotsForBudget(Geometry, 4000, 10));
    }

    [Fact]
    public void Arranging_slots_as_the_batch_prefix_moves_their_kv_with_them()
    {
        using var pool = new KvCachePool(Geometry, slotCount: 4, slotCapacity: 10);
        var slots = new KvSlot[4];
        for (var i = 0; i < 4; i++)
        {
            Assert.True(pool.TryAcquire(out slots[i]));
            Fill(pool, slots[i], tokens: 3 + i, tag: 100 * (i + 1));
        }
        // Batch of the slots at indices 3 and 1: afterwards they sit at 0 and 1 with their own KV.
        var batch = new[] { slots.Single(s => s.Index == 3), slots.Single(s => s.Index == 1) };
        var tags = batch.Select(s => Tag(pool, s)).ToArray();
        pool.ArrangeAsPrefix(batch);
        Assert.Equal(new HashSet<int> { 0, 1 }, batch.Select(s => s.Index).ToHashSet());
        for (var i = 0; i < batch.Length; i++) Verify(pool, batch[i], tags[i]);
        foreach (var s in slots.Except(batch)) Verify(pool, s, (s.Length - 3 + 1) * 100);
    }

    [Fact]
    public void Copying_a_prefix_copies_that_many_positions_of_every_layer_and_head()
    {
        using var pool = new KvCachePool(Geometry, slotCount: 2, slotCapacity: 10);
        Assert.True(pool.TryAcquire(out var a));
        Assert.True(pool.TryAcquire(out var b));
        Fill(pool, a, tokens: 6, tag: 700);
        pool.CopyPrefix(a, b, 4);
        Assert.Equal(a.Tokens.Take(4), b.Tokens);
        Verify(pool, b, 700);
        Assert.False(pool.TryAcquire(out _));
        pool.Release(a);
        Assert.Equal(1, pool.FreeSlots);
    }

    [Fact]
    public void Held_tokens_count_whole_pages_and_a_budget_bounds_what_fits()
    {
        // 4 dims · 4 bytes = 16 bytes per token per head: a 4 KiB page holds 256 tokens of one head.
        using var pool = new KvCachePool(Geometry, slotCount: 4, slotCapacity: 1024, tokenBudget: 1024);
        Assert.Equal(Environment.SystemPageSize / 16, pool.TokensPerPage);
        Assert.True(pool.TryAcquire(out var a));
        Fill(pool, a, tokens: 10, tag: 100);
        Assert.Equal(pool.TokensPerPage, pool.HeldTokens);
        Assert.True(pool.Fits(1024 - pool.TokensPerPage));
        Assert.False(pool.Fits(1024 - pool.TokensPerPage + 1));
        pool.Release(a);
        Assert.Equal(0, pool.HeldTokens);
    }

    [Fact]
    public void Memory_is_taken_as_tokens_are_stored_and_given_back_when_a_slot_is_released_or_truncated()
    {
        // 64 slots of 4096 tokens, 2 KiB per token: 512 MiB reserved. Filling one slot must cost about its 8 MiB.
        var geometry = new KvCacheGeometry(Layers: 4, KvHeads: 4, HeadSize: 64, ElementSize: 4);
        using var pool = new KvCachePool(geometry, slotCount: 64, slotCapacity: 4096);
        Assert.Equal(OperatingSystem.IsLinux(), pool.VirtualMemory);
        Assert.True(pool.VirtualMemory, "the pool reserves virtual memory on Linux");
        var before = ResidentBytes(pool);
        Assert.True(pool.TryAcquire(out var slot));
        var slotBytes = geometry.BytesPerToken * pool.SlotCapacity;
        for (var l = 0; l < geometry.Layers; l++)
        {
            NativeMemory.Fill((void*)(pool.KeyBuffer(l) + (nint)(slot.Index * pool.SlotBytesPerLayer)), (nuint)pool.SlotBytesPerLayer, 1);
            NativeMemory.Fill((void*)(pool.ValueBuffer(l) + (nint)(slot.Index * pool.SlotBytesPerLayer)), (nuint)pool.SlotBytesPerLayer, 1);
        }
        for (var t = 0; t < pool.SlotCapacity; t++) slot.Tokens.Add(t);
        var filled = ResidentBytes(pool) - before;
        Assert.InRange(filled, slotBytes * 0.9, slotBytes * 2.0);

        // Truncated to a quarter: three quarters of its pages go back, and the kept positions keep their bytes.
        slot.Truncate(pool.SlotCapacity / 4);
        Assert.InRange(ResidentBytes(pool) - before, slotBytes * 0.15, slotBytes * 0.5);
        Assert.Equal(1, *(byte*)(pool.KeyBuffer(0) + (nint)(slot.Index * pool.SlotBytesPerLayer)));
        pool.Release(slot);
        Assert.True(ResidentBytes(pool) - before < slotBytes * 0.2, "released pages are given back");
        Assert.Equal(0, *(byte*)(pool.KeyBuffer(0) + (nint)(slot.Index * pool.SlotBytesPerLayer)));
    }

    /// <summary>Bytes of the pool's buffers in physical memory (mincore over the reserved range: this pool only).</summary>
    private static long ResidentBytes(KvCachePool pool)
    {
        var page = Environment.SystemPageSize;
        var start = pool.KeyBuffer(0);
        var end = pool.ValueBuffer(pool.Geometry.Layers - 1) + (nint)(pool.SlotBytesPerLayer * pool.SlotCount);
        var pages = (int)((end - start + page - 1) / page);
        var vector = new byte[pages];
        fixed (byte* v = vector)
            Assert.Equal(0, Mincore(start, (nuint)(end - start), v));
        return vector.Count(b => (b & 1) != 0) * (long)page;
    }

    [DllImport("libc", EntryPoint = "mincore", SetLastError = true)]
    private static extern int Mincore(nint address, nuint length, byte* vector);

    // Writes value tag + layer·1000 + head·100… into every position a slot holds; the token list records them.
    private static void Fill(KvCachePool pool, KvSlot slot, int tokens, int tag)
    {
        slot.Tokens.Clear();
        for (var t = 0; t < tokens; t++) slot.Tokens.Add(tag + t);
        ForEach(pool, slot, (p, t) => *p = tag + t);
    }

    private static int Tag(KvCachePool pool, KvSlot slot) => slot.Tokens[0];

    private static void Verify(KvCachePool pool, KvSlot slot, int tag) => ForEach(pool, slot, (p, t) => Assert.Equal(tag + t, *p));

    private delegate void PositionAction(float* position, int token);

    private static void ForEach(KvCachePool pool, KvSlot slot, PositionAction action)
    {
        for (var l = 0; l < Geometry.Layers; l++)
        foreach (var buffer in new[] { pool.KeyBuffer(l), pool.ValueBuffer(l) })
        for (var h = 0; h < Geometry.KvHeads; h++)
        for (var t = 0; t < slot.Length; t++)
        for (var d = 0; d < Geometry.HeadSize; d++)
            action((float*)buffer + ((slot.Index * Geometry.KvHeads + h) * pool.SlotCapacity + t) * Geometry.HeadSize + d, t);
    }
}
