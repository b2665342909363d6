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
