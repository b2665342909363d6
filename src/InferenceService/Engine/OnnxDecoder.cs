using System.Runtime.InteropServices;
using ChatServices.InferenceService.Engine.KvCache;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace ChatServices.InferenceService.Engine;

/// <summary>One row of a batched decode step: the token to feed and the slot whose KV it extends.</summary>
public readonly record struct DecodeRow(KvSlot Slot, int TokenId);

/// <summary>One row of a batched prefill step: <paramref name="Count"/> tokens of <paramref name="Tokens"/> from <paramref name="Start"/>, after the KV the slot holds.</summary>
public readonly record struct PrefillRow(KvSlot Slot, List<int> Tokens, int Start, int Count);

/// <summary>
/// The model runner: executes one forward pass over a prepared batch and exposes the logits. It owns the ONNX
/// Runtime session and its I/O binding and binds KV straight from the <see cref="KvCachePool"/>'s memory; it decides
/// nothing about which sequences run.
/// Contract (GroupQueryAttention convention, see <see cref="DecoderConvention"/>; the Optimum convention is served too,
/// at the cost its graph imposes: its present KV is a new tensor of past ‖ new, so each step ONNX Runtime writes the
/// whole bound cache once more and the new tokens are copied back into the slots):
/// <list type="bullet">
/// <item>past and present KV of a step are the same memory (the slot's full capacity), so GroupQueryAttention writes
/// the new tokens' KV in place after each row's history: no per-step copy, no reallocation;</item>
/// <item>a decode step feeds one token per row; rows are moved to the slots at indices 0..B-1 and may have different history
/// lengths (right padding in the attention mask; GroupQueryAttention reads each row's length from it);</item>
/// <item>a prefill step feeds several tokens of one sequence, or (GroupQueryAttention convention,
/// <see cref="PrefillBatch"/>) the first chunks of several sequences that hold no KV yet, right padded to the
/// longest, in one run. ONNX Runtime's CPU GroupQueryAttention refuses more than one row when a step feeds several
/// tokens on top of existing KV ("batch_size must be 1 when sequence_length > 1 and past context is given"), so a
/// chunk after a cached prefix or an earlier chunk runs alone, and decode rows (one token on top of their KV) never
/// share a run with prompt chunks.</item>
/// <item>only each row's last position is read: a graph with last-token logits (<see cref="ModelFolder.LastTokenLogits"/>,
/// [batch, 1, vocab]) computes nothing else; with an all-position graph the logits of earlier prompt positions are
/// written by ONNX Runtime but never read or converted.</item>
/// </list>
/// Invariant: after a step, the slot's <see cref="KvSlot.Tokens"/> gain exactly the tokens fed.
/// </summary>
public sealed unsafe class OnnxDecoder : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly KvCachePool _pool;
    private readonly TensorElementType _kvType;
    private readonly TensorElementType _logitsType;
    private readonly long[] _inputIds;
    private readonly long[] _mask;
    private readonly long[] _positions;
    private readonly int[] _rowLengths;
    private readonly bool _optimum;
    private (int First, int Count) _boundKv = (-1, 0);
    private readonly float* _logits;
    private readonly Half* _logitsHalf;
    private readonly int _maxTokensPerStep;
    private readonly bool _lastTokenLogits;
    private readonly Dictionary<(int First, int Count), OrtValue[]> _kvViews = new();
    private const int MaxCachedKvViews = 256;
    private readonly List<KvSlot> _slots = [];
    private readonly string[] _pastNames;
    private readonly string[] _presentNames;

    public OnnxDecoder(ModelFolder folder, InferenceSession session, KvCachePool pool, TensorElementType kvType, int maxTokensPerStep)
    {
        Folder = folder;
        _optimum = folder.Convention == DecoderConvention.Optimum;
        _session = session;
        _pool = pool;
        _kvType = kvType;
        _logitsType = session.OutputMetadata[folder.LogitsName].ElementDataType;
        _maxTokensPerStep = Math.Max(maxTokensPerStep, pool.SlotCount);
        _lastTokenLogits = folder.LastTokenLogits;
        _binding = session.CreateIoBinding();
        _inputIds = GC.AllocateArray<long>(_maxTokensPerStep, pinned: true);
        _positions = GC.AllocateArray<long>(_maxTokensPerStep, pinned: true);
        _rowLengths = new int[_maxTokensPerStep];
        // Optimum-convention masks span the whole slot plus the new tokens (see Run).
        var maskLength = Math.Max((long)pool.SlotCount * (pool.SlotCapacity + 1), pool.SlotCapacity + (long)_maxTokensPerStep);
        _mask = GC.AllocateArray<long>(maskLength < int.MaxValue ? (int)maskLength : throw new InvalidOperationException("KV pool too large for one mask."), pinned: true);
        // Rows of logits one step returns: one per batch row with last-token logits, else one per token fed.
        var logitsRows = _lastTokenLogits ? Math.Min(_maxTokensPerStep, pool.SlotCount) : _maxTokensPerStep;
        var logitsCount = (nuint)logitsRows * (nuint)folder.VocabSize;
        _logits = (float*)NativeMemory.AlignedAlloc(logitsCount * sizeof(float), 64);
        if (_logitsType == TensorElementType.Float16)
            _logitsHalf = (Half*)NativeMemory.AlignedAlloc(logitsCount * 2, 64);
        _pastNames = new string[folder.Layers * 2];
        _presentNames = new string[folder.Layers * 2];
        for (var l = 0; l < folder.Layers; l++)
        {
            _pastNames[2 * l] = folder.PastKeyName(l);
            _pastNames[2 * l + 1] = folder.PastValueName(l);
            _presentNames[2 * l] = folder.PresentKeyName(l);
            _presentNames[2 * l + 1] = folder.PresentValueName(l);
        }
    }

    public ModelFolder Folder { get; }
    public int VocabSize => Folder.VocabSize;

    /// <summary>Most tokens one step may feed (decode rows, or one prefill chunk).</summary>
    public int MaxTokensPerStep => _maxTokensPerStep;

    /// <summary>
    /// One decode step over <paramref name="rows"/>. First moves their slots to pool indices 0..B-1 (see
    /// <see cref="KvCachePool.ArrangeAsPrefix"/>), so the batch's KV is one contiguous view; a row's logits are then
    /// at its slot's index: the result is [B, vocab] with row <c>rows[i].Slot.Index</c> for <c>rows[i]</c>.
    /// </summary>
    public ReadOnlySpan<float> Decode(ReadOnlySpan<DecodeRow> rows)
    {
        var batch = rows.Length;
        _slots.Clear();
        var width = 0;
        foreach (var row in rows)
        {
            _slots.Add(row.Slot);
            width = Math.Max(width, row.Slot.Length + 1);
        }
        _pool.ArrangeAsPrefix(_slots);
        if (_optimum) width = _pool.SlotCapacity + 1;
        foreach (var row in rows)
        {
            var r = row.Slot.Index;
            _inputIds[r] = row.TokenId;
            FillMaskRow(_mask.AsSpan(r * width, width), row.Slot.Length, 1);
            _positions[r] = _rowLengths[r] = row.Slot.Length;
        }
        Run(first: 0, batch, tokens: 1, width);
        foreach (var row in rows) row.Slot.Tokens.Add(row.TokenId);
        return new ReadOnlySpan<float>(_logits, batch * VocabSize);
    }

    /// <summary>
    /// Feeds <paramref name="tokens"/> of one sequence after the KV its slot already holds. Returns the logits of
    /// the last token fed, [vocab].
    /// </summary>
    public ReadOnlySpan<float> Prefill(KvSlot slot, ReadOnlySpan<int> tokens)
    {
        var count = tokens.Length;
        if (count == 0 || count > _maxTokensPerStep) throw new ArgumentOutOfRangeException(nameof(tokens));
        var total = slot.Length + count;
        if (total > _pool.SlotCapacity) throw new InvalidOperationException("Sequence exceeds the slot capacity.");
        var width = _optimum ? _pool.SlotCapacity + count : total;
        for (var i = 0; i < count; i++)
        {
            _inputIds[i] = tokens[i];
            _positions[i] = slot.Length + i;
        }
        FillMaskRow(_mask.AsSpan(0, width), slot.Length, count);
        _rowLengths[0] = slot.Length;
        var lastRow = _lastTokenLogits ? 0 : count - 1;
        Run(first: slot.Index, batch: 1, tokens: count, width, firstRowRead: lastRow);
        foreach (var t in tokens) slot.Tokens.Add(t);
        return new ReadOnlySpan<float>(_logits + (long)lastRow * VocabSize, VocabSize);
    }

    /// <summary>Whether <paramref name="rows"/> may run as one prefill step: none holds KV yet (see the class remarks).</summary>
    public bool CanBatch(ReadOnlySpan<PrefillRow> rows)
    {
        if (_optimum) return rows.Length == 1;
        foreach (var r in rows)
            if (r.Slot.Length != 0) return false;
        return true;
    }

    /// <summary>
    /// Feeds a chunk of each row's tokens in one run (GroupQueryAttention convention; <see cref="CanBatch"/> must
    /// hold). Moves the rows' slots to pool indices first..first+B-1 (<see cref="KvCachePool.ArrangeAt"/>); the
    /// result is [B, vocab] with the logits of a row's last token fed at its slot's index − first. The rows' padded
    /// size, B × the longest chunk, must not exceed <see cref="MaxTokensPerStep"/>.
    /// </summary>
    public ReadOnlySpan<float> PrefillBatch(ReadOnlySpan<PrefillRow> rows, int first)
    {
        var batch = rows.Length;
        if (!CanBatch(rows)) throw new ArgumentException("These rows cannot share a prefill step.", nameof(rows));
        _slots.Clear();
        int tokens = 0, width = 0;
        foreach (var row in rows)
        {
            if (row.Count < 1 || row.Slot.Length + row.Count > _pool.SlotCapacity) throw new ArgumentOutOfRangeException(nameof(rows));
            _slots.Add(row.Slot);
            tokens = Math.Max(tokens, row.Count);
            width = Math.Max(width, row.Slot.Length + row.Count);
        }
        if ((long)batch * tokens > _maxTokensPerStep) throw new ArgumentOutOfRangeException(nameof(rows), "The padded batch exceeds the step size.");
        _pool.ArrangeAt(_slots, first);
        for (var i = 0; i < batch; i++)
        {
            var row = rows[i];
            var r = row.Slot.Index - first;
            var ids = _inputIds.AsSpan(r * tokens, tokens);
            var chunk = CollectionsMarshal.AsSpan(row.Tokens).Slice(row.Start, row.Count);
            for (var j = 0; j < chunk.Length; j++) ids[j] = chunk[j];
            ids[row.Count..].Clear(); // right padding: computed, never read
            FillMaskRow(_mask.AsSpan(r * width, width), row.Slot.Length, row.Count);
        }
        Run(first, batch, tokens, width);
        var vocab = VocabSize;
        // Sorted by local index so that each needed row moves down to index r (sources never lie below targets).
        Span<int> counts = batch <= 256 ? stackalloc int[batch] : new int[batch];
        foreach (var row in rows)
        {
            counts[row.Slot.Index - first] = row.Count;
            foreach (var t in CollectionsMarshal.AsSpan(row.Tokens).Slice(row.Start, row.Count)) row.Slot.Tokens.Add(t);
        }
        if (!_lastTokenLogits)
            for (var r = 0; r < batch; r++)
            {
                var from = ((long)r * tokens + counts[r] - 1) * vocab;
                if (from != (long)r * vocab)
                    Buffer.MemoryCopy(_logits + from, _logits + (long)r * vocab, (long)vocab * sizeof(float), (long)vocab * sizeof(float));
            }
        return new ReadOnlySpan<float>(_logits, batch * vocab);
    }

    /// <summary>
    /// One attention-mask row. GroupQueryAttention: the row's history then its new tokens, right-padded to the batch
    /// width. Optimum convention: the past input is the slot's whole capacity, so the mask marks the history
    /// (<paramref name="length"/>), leaves the rest of the slot masked, then the new tokens after it; the graph's
    /// causal rule (key j visible to query s when j ≤ past + s) then sees exactly the history and earlier new tokens.
    /// </summary>
    private void FillMaskRow(Span<long> row, int length, int newTokens)
    {
        if (_optimum)
        {
            row[..length].Fill(1);
            row[length.._pool.SlotCapacity].Clear();
            row[_pool.SlotCapacity..].Fill(1);
        }
        else
        {
            row[..(length + newTokens)].Fill(1);
            row[(length + newTokens)..].Clear();
        }
    }

    /// <summary>
    /// Runs the graph on the bound inputs. Logits rows from <paramref name="firstRowRead"/> on are the ones the caller
    /// reads (float16 logits are converted for those rows only).
    /// </summary>
    private void Run(int first, int batch, int tokens, int width, int firstRowRead = 0)
    {
        var cpu = OrtMemoryInfo.DefaultInstance;
        fixed (long* ids = _inputIds)
        fixed (long* mask = _mask)
        fixed (long* positions = _positions)
        {
            using var idsValue = OrtValue.CreateTensorValueWithData(cpu, TensorElementType.Int64, [batch, tokens], (nint)ids, (long)batch * tokens * sizeof(long));
            using var maskValue = OrtValue.CreateTensorValueWithData(cpu, TensorElementType.Int64, [batch, width], (nint)mask, (long)batch * width * sizeof(long));
            using var positionsValue = _optimum
                ? OrtValue.CreateTensorValueWithData(cpu, TensorElementType.Int64, [batch, tokens], (nint)positions, (long)batch * tokens * sizeof(long))
                : null;
            var logitsPerRow = _lastTokenLogits ? 1 : tokens;
            var logitsElements = (long)batch * logitsPerRow * VocabSize;
            using var logitsValue = _logitsType == TensorElementType.Float16
                ? OrtValue.CreateTensorValueWithData(cpu, TensorElementType.Float16, [batch, logitsPerRow, VocabSize], (nint)_logitsHalf, logitsElements * 2)
                : OrtValue.CreateTensorValueWithData(cpu, TensorElementType.Float, [batch, logitsPerRow, VocabSize], (nint)_logits, logitsElements * sizeof(float));
            _binding.BindInput(Folder.InputIdsName, idsValue);
            _binding.BindInput(Folder.AttentionMaskName, maskValue);
            if (positionsValue is not null) _binding.BindInput(Folder.PositionIdsName!, positionsValue);
            // The KV views stay bound while the batch covers the same slots (every decode step of a steady batch):
            // rebinding 4 tensors per layer each step would only repeat what the binding already holds.
            if (_optimum || _boundKv != (first, batch))
            {
                var views = KvViews(first, batch);
                for (var i = 0; i < views.Length; i++)
                {
                    _binding.BindInput(_pastNames[i], views[i]);
                    // GroupQueryAttention appends in place (shared buffer); the Optimum graph returns past ‖ new as a
                    // new tensor, from which the new tokens are copied into the slots below.
                    if (_optimum) _binding.BindOutputToDevice(_presentNames[i], cpu);
                    else _binding.BindOutput(_presentNames[i], views[i]);
                }
                _boundKv = (first, batch);
            }
            _binding.BindOutput(Folder.LogitsName, logitsValue);
            _session.RunWithBinding(_runOptions, _binding);
            if (_optimum) CopyNewKvIntoSlots(first, batch, tokens);
            if (_logitsType == TensorElementType.Float16)
                for (var i = (long)firstRowRead * VocabSize; i < logitsElements; i++) _logits[i] = (float)_logitsHalf[i];
        }
    }

    /// <summary>Copies the new tokens' KV from the Optimum graph's present outputs to each row's slot.</summary>
    private void CopyNewKvIntoSlots(int first, int batch, int tokens)
    {
        var g = _pool.Geometry;
        var names = _binding.GetOutputNames();
        using var outputs = _binding.GetOutputValues();
        var presentLength = _pool.SlotCapacity + tokens;
        long tokenBytes = g.HeadSize * g.ElementSize;
        var bytes = tokens * tokenBytes;
        for (var i = 0; i < _presentNames.Length; i++)
        {
            var source = outputs[Array.IndexOf(names, _presentNames[i])].GetTensorMutableRawData();
            var layer = i / 2;
            var buffer = (byte*)(i % 2 == 0 ? _pool.KeyBuffer(layer) : _pool.ValueBuffer(layer));
            fixed (byte* src = source)
                for (var r = 0; r < batch; r++)
                for (var h = 0; h < g.KvHeads; h++)
                {
                    var from = src + ((long)(r * g.KvHeads + h) * presentLength + _pool.SlotCapacity) * tokenBytes;
                    var to = buffer + (first + r) * _pool.SlotBytesPerLayer + ((long)h * _pool.SlotCapacity + _rowLengths[r]) * tokenBytes;
                    Buffer.MemoryCopy(from, to, bytes, bytes);
                }
        }
    }

    /// <summary>
    /// Tensors over pool memory for slots first..first+count-1, one per past/present name, shaped
    /// [count, kv_heads, slot_capacity, head_size]. Cached (at most <see cref="MaxCachedKvViews"/> ranges): they only
    /// describe memory that never moves.
    /// </summary>
    private OrtValue[] KvViews(int first, int count)
    {
        if (_kvViews.TryGetValue((first, count), out var views)) return views;
        if (_kvViews.Count >= MaxCachedKvViews)
        {
            // Batched prefills place rows at many (first, count) ranges: keep the cache bounded.
            foreach (var (key, stale) in _kvViews)
                if (key != _boundKv)
                {
                    foreach (var v in stale) v.Dispose();
                    _kvViews.Remove(key);
                }
        }
        var g = _pool.Geometry;
        long[] shape = [count, g.KvHeads, _pool.SlotCapacity, g.HeadSize];
        var bytes = _pool.SlotBytesPerLayer * count;
        views = new OrtValue[g.Layers * 2];
        for (var l = 0; l < g.Layers; l++)
        {
            views[2 * l] = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, _kvType, shape,
                _pool.KeyBuffer(l) + (nint)(first * _pool.SlotBytesPerLayer), bytes);
            views[2 * l + 1] = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, _kvType, shape,
                _pool.ValueBuffer(l) + (nint)(first * _pool.SlotBytesPerLayer), bytes);
        }
        _kvViews[(first, count)] = views;
        return views;
    }

    public void Dispose()
    {
        foreach (var views in _kvViews.Values)
            foreach (var v in views) v.Dispose();
        _kvViews.Clear();
        _binding.Dispose();
        _runOptions.Dispose();
        NativeMemory.AlignedFree(_logits);
        if (_logitsHalf != null) NativeMemory.AlignedFree(_logitsHalf);
    }
}
