using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// Byte-pair encoding (tokenizer.json <c>model.type = "BPE"</c>). A piece starts as one symbol per byte
/// (byte-level pipelines: each UTF-8 byte through <see cref="ByteLevelAlphabet"/>) or one symbol per code point
/// (SentencePiece-style); then the adjacent pair with the lowest merge rank is merged, leftmost first on ties,
/// until no pair has a rank. Symbols missing from the vocabulary become <c>&lt;0xXX&gt;</c> byte tokens
/// (<c>byte_fallback</c>) or the unknown token.
/// Thread-safe: immutable apart from the bounded piece → ids cache.
/// </summary>
internal sealed class BpeModel
{
    /// <summary>Pieces longer than this go through the heap-based merge loop (O(n log n)) instead of the scan loop (O(n²)).</summary>
    private const int ScanMergeLimit = 128;
    private const int MaxCachedPieceLength = 96;
    private const int CacheCapacity = 1 << 16;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabBySpan;
    private readonly Dictionary<Pair, Merge> _merges;
    private readonly Dictionary<int, int> _codePointIds = new();
    private readonly int[] _byteIds = new int[256];
    private readonly int[]? _byteFallbackIds;
    private readonly bool _ignoreMerges;
    private readonly ConcurrentDictionary<string, int[]> _cache = new();
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheBySpan;

    private readonly record struct Merge(int Rank, int MergedId);

    public int UnknownId { get; }
    public bool FuseUnknown { get; }
    public IReadOnlyDictionary<string, int> Vocabulary => _vocab;

    public BpeModel(JsonElement e)
    {
        if (e.Type() is { } type && type != "BPE") throw TokenizerFormatException.Unsupported("model", type);
        if (e.Has("dropout", out var dropout) && dropout.GetDouble() > 0)
            throw new TokenizerFormatException("BPE dropout is not supported (encoding must be deterministic).");
        if (!string.IsNullOrEmpty(e.String("continuing_subword_prefix")) || !string.IsNullOrEmpty(e.String("end_of_word_suffix")))
            throw new TokenizerFormatException("BPE continuing_subword_prefix / end_of_word_suffix are not supported.");
        if (!e.Has("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException("BPE model without a vocab object.");

        _vocab = new Dictionary<string, int>(capacity: 1 << 17, StringComparer.Ordinal);
        foreach (var p in vocab.EnumerateObject()) _vocab[p.Name] = p.Value.GetInt32();
        _vocabBySpan = _vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _cacheBySpan = _cache.GetAlternateLookup<ReadOnlySpan<char>>();

        _merges = new Dictionary<Pair, Merge>();
        var rank = 0;
        foreach (var m in e.Array("merges"))
        {
            string left, right;
            if (m.ValueKind == JsonValueKind.Array)
            {
                left = m[0].GetString()!;
                right = m[1].GetString()!;
            }
            else
            {
                var s = m.GetString()!;
                var space = s.IndexOf(' ', 1);
                if (space < 0) throw new TokenizerFormatException($"BPE merge '{s}' is not 'left right'.");
                left = s[..space];
                right = s[(space + 1)..];
            }
            // A merge whose parts or result are not in the vocabulary can never apply to vocabulary symbols.
            if (_vocab.TryGetValue(left, out var l) && _vocab.TryGetValue(right, out var r) && _vocab.TryGetValue(left + right, out var merged))
                _merges.TryAdd(Key(l, r), new Merge(rank, merged));
            rank++;
        }

        foreach (var (token, id) in _vocab)
            if (Rune.DecodeFromUtf16(token, out var rune, out var used) == OperationStatus.Done && used == token.Length)
                _codePointIds[rune.Value] = id;
        for (var b = 0; b < 256; b++)
            _byteIds[b] = _vocab.TryGetValue(ByteLevelAlphabet.ByteToChar[b].ToString(), out var id) ? id : -1;
        if (e.Bool("byte_fallback", false))
        {
            _byteFallbackIds = new int[256];
            for (var b = 0; b < 256; b++)
                _byteFallbackIds[b] = _vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
        }
        _ignoreMerges = e.Bool("ignore_merges", false);
        UnknownId = e.String("unk_token") is { } unk && _vocab.TryGetValue(unk, out var unkId) ? unkId : -1;
        FuseUnknown = e.Bool("fuse_unk", false);
    }

    private static Pair Key(int left, int right) => new(left, right);

    /// <summary>
    /// A pair of adjacent symbol ids. Its own hash, because long's (high ^ low) sends most id pairs of a 100k+
    /// vocabulary into a few thousand buckets; a multiplicative hash spreads them.
    /// </summary>
    private readonly record struct Pair(int Left, int Right)
    {
        public override int GetHashCode() => (int)((((ulong)(uint)Left << 32) | (uint)Right) * 0x9E3779B97F4A7C15UL >> 32);
    }

    /// <summary>Appends the ids of one pre-tokenized piece to <paramref name="output"/>.</summary>
    public void Encode(ReadOnlySpan<char> piece, bool byteLevel, List<int> output)
    {
        if (piece.IsEmpty) return;
        if (byteLevel)
        {
            EncodeCached(piece, byteLevel: true, output);
            return;
        }
        if (_ignoreMerges && _vocabBySpan.TryGetValue(piece, out var whole))
        {
            output.Add(whole);
            return;
        }
        // A code point outside the vocabulary is in no merge: it cuts the piece into segments that merge
        // independently, each cached on its own (without a pre-tokenizer, a SentencePiece text is one piece, and
        // its lines, between "\n"s that only exist as byte tokens, become cacheable segments).
        Span<byte> buffer = stackalloc byte[4];
        var start = 0;
        for (var i = 0; i < piece.Length;)
        {
            var width = CodePointAt(piece, i, out var codePoint);
            if (_codePointIds.ContainsKey(codePoint))
            {
                i += width;
                continue;
            }
            EncodeCached(piece[start..i], byteLevel: false, output);
            EmitUnknown(buffer[..Encoding.UTF8.GetBytes(piece.Slice(i, width), buffer)], output);
            i += width;
            start = i;
        }
        EncodeCached(piece[start..], byteLevel: false, output);
    }

    /// <summary>Width (1 or 2 UTF-16 units) of the code point at <paramref name="i"/>; a lone surrogate is a code point of its own.</summary>
    private static int CodePointAt(ReadOnlySpan<char> s, int i, out int codePoint)
    {
        if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            codePoint = char.ConvertToUtf32(s[i], s[i + 1]);
            return 2;
        }
        codePoint = s[i];
        return 1;
    }

    private void EncodeCached(ReadOnlySpan<char> piece, bool byteLevel, List<int> output)
    {
        if (piece.IsEmpty) return;
        var cacheable = piece.Length <= MaxCachedPieceLength;
        if (cacheable && _cacheBySpan.TryGetValue(piece, out var cached))
        {
            output.AddRange(cached);
            return;
        }
        var start = output.Count;
        if (byteLevel) EncodeBytes(piece, output);
        else EncodeCodePoints(piece, output);
        if (!cacheable) return;
        if (_cache.Count >= CacheCapacity) _cache.Clear();
        _cacheBySpan.TryAdd(piece, CollectionsMarshal.AsSpan(output)[start..].ToArray());
    }

    private void EncodeBytes(ReadOnlySpan<char> piece, List<int> output)
    {
        // Lone surrogates encode as U+FFFD (EF BF BD), as every UTF-8 encoder of JavaScript strings does.
        var byteCount = Encoding.UTF8.GetByteCount(piece);
        byte[]? rented = null;
        var bytes = byteCount <= 512 ? stackalloc byte[byteCount] : (rented = ArrayPool<byte>.Shared.Rent(byteCount)).AsSpan(0, byteCount);
        Encoding.UTF8.GetBytes(piece, bytes);
        try
        {
            if (_ignoreMerges && TryWholeByteLevelToken(bytes, out var whole))
            {
                output.Add(whole);
                return;
            }
            var symbols = new Symbols(bytes.Length);
            for (var i = 0; i < bytes.Length; i++) symbols.Add(_byteIds[bytes[i]], i, 1);
            MergeAndEmit(ref symbols, piece, output, byteSymbols: bytes);
            symbols.Dispose();
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private bool TryWholeByteLevelToken(ReadOnlySpan<byte> bytes, out int id)
    {
        Span<char> mapped = bytes.Length <= 256 ? stackalloc char[bytes.Length] : new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) mapped[i] = ByteLevelAlphabet.ByteToChar[bytes[i]];
        return _vocabBySpan.TryGetValue(mapped, out id);
    }

    /// <summary>Code-point symbols; the caller has cut the piece at code points outside the vocabulary.</summary>
    private void EncodeCodePoints(ReadOnlySpan<char> piece, List<int> output)
    {
        var symbols = new Symbols(piece.Length);
        for (var i = 0; i < piece.Length;)
        {
            var width = CodePointAt(piece, i, out var codePoint);
            symbols.Add(_codePointIds.TryGetValue(codePoint, out var id) ? id : -1, i, width);
            i += width;
        }
        MergeAndEmit(ref symbols, piece, output, byteSymbols: default);
        symbols.Dispose();
    }

    private void MergeAndEmit(ref Symbols s, ReadOnlySpan<char> piece, List<int> output, ReadOnlySpan<byte> byteSymbols)
    {
        if (s.Count <= ScanMergeLimit) MergeByScan(ref s);
        else MergeWithHeap(ref s);

        Span<byte> buffer = stackalloc byte[8];
        for (var i = s.Head; i >= 0; i = s.Next[i])
        {
            if (s.Ids[i] >= 0)
            {
                output.Add(s.Ids[i]);
                continue;
            }
            // Unknown symbol (never merged).
            EmitUnknown(byteSymbols.IsEmpty
                ? buffer[..Encoding.UTF8.GetBytes(piece.Slice(s.Starts[i], s.Lengths[i]), buffer)]
                : byteSymbols.Slice(s.Starts[i], s.Lengths[i]), output);
        }
    }

    /// <summary>A symbol outside the vocabulary: its UTF-8 bytes as byte tokens (byte_fallback), else the unknown token, else nothing.</summary>
    private void EmitUnknown(ReadOnlySpan<byte> bytes, List<int> output)
    {
        if (_byteFallbackIds is not null && AllKnown(bytes))
            foreach (var b in bytes) output.Add(_byteFallbackIds[b]);
        else if (UnknownId >= 0) output.Add(UnknownId);
    }

    private bool AllKnown(ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
            if (_byteFallbackIds![b] < 0) return false;
        return true;
    }

    private bool TryMerge(int left, int right, out Merge merge)
    {
        if (left >= 0 && right >= 0) return _merges.TryGetValue(Key(left, right), out merge);
        merge = default;
        return false;
    }

    /// <summary>Short pieces: rescan the live pairs for the lowest rank each round (cache-friendly, no heap).</summary>
    private void MergeByScan(ref Symbols s)
    {
        Span<int> ranks = stackalloc int[s.Count];
        Span<int> mergedIds = stackalloc int[s.Count];
        for (var i = 0; i + 1 < s.Count; i++) ranks[i] = RankOf(s.Ids[i], s.Ids[i + 1], out mergedIds[i]);
        if (s.Count > 0) ranks[s.Count - 1] = int.MaxValue;

        while (true)
        {
            var best = -1;
            var bestRank = int.MaxValue;
            for (var i = s.Head; i >= 0; i = s.Next[i])
                if (ranks[i] < bestRank)
                {
                    bestRank = ranks[i];
                    best = i;
                }
            if (best < 0) return;

            var right = s.Next[best];
            s.Ids[best] = mergedIds[best];
            s.Lengths[best] += s.Lengths[right];
            s.Unlink(right);
            var next = s.Next[best];
            ranks[best] = next >= 0 ? RankOf(s.Ids[best], s.Ids[next], out mergedIds[best]) : int.MaxValue;
            var prev = s.Prev[best];
            if (prev >= 0) ranks[prev] = RankOf(s.Ids[prev], s.Ids[best], out mergedIds[prev]);
        }
    }

    private int RankOf(int left, int right, out int mergedId)
    {
        if (TryMerge(left, right, out var m))
        {
            mergedId = m.MergedId;
            return m.Rank;
        }
        mergedId = -1;
        return int.MaxValue;
    }

    /// <summary>
    /// Long pieces: a min-heap of candidate pairs keyed by (rank, position); entries made stale by earlier merges
    /// are skipped when popped (a pair's rank identifies the pair, so an unchanged rank means an unchanged pair).
    /// </summary>
    private void MergeWithHeap(ref Symbols s)
    {
        var heap = new PriorityQueue<int, long>(s.Count);
        for (var i = 0; i + 1 < s.Count; i++)
            if (TryMerge(s.Ids[i], s.Ids[i + 1], out var m)) heap.Enqueue(i, ((long)m.Rank << 32) | (uint)i);

        while (heap.TryDequeue(out var pos, out var priority))
        {
            var rank = (int)(priority >> 32);
            var right = s.Next[pos];
            if (!s.Alive(pos) || right < 0 || !TryMerge(s.Ids[pos], s.Ids[right], out var m) || m.Rank != rank) continue;
            s.Ids[pos] = m.MergedId;
            s.Lengths[pos] += s.Lengths[right];
            s.Unlink(right);
            var prev = s.Prev[pos];
            if (prev >= 0 && TryMerge(s.Ids[prev], s.Ids[pos], out var before)) heap.Enqueue(prev, ((long)before.Rank << 32) | (uint)prev);
            var next = s.Next[pos];
            if (next >= 0 && TryMerge(s.Ids[pos], s.Ids[next], out var after)) heap.Enqueue(pos, ((long)after.Rank << 32) | (uint)pos);
        }
    }

    /// <summary>The symbols of one piece as a doubly linked list over pooled arrays; index = original position.</summary>
    private struct Symbols : IDisposable
    {
        private readonly int[] _buffer;
        public readonly Span<int> Ids => _buffer.AsSpan(0, Capacity);
        public readonly Span<int> Prev => _buffer.AsSpan(Capacity, Capacity);
        public readonly Span<int> Next => _buffer.AsSpan(2 * Capacity, Capacity);
        public readonly Span<int> Starts => _buffer.AsSpan(3 * Capacity, Capacity);
        public readonly Span<int> Lengths => _buffer.AsSpan(4 * Capacity, Capacity);
        public readonly int Capacity;
        public int Count;
        public int Head;

        public Symbols(int capacity)
        {
            Capacity = Math.Max(capacity, 1);
            _buffer = ArrayPool<int>.Shared.Rent(5 * Capacity);
            Count = 0;
            Head = -1;
        }

        public void Add(int id, int start, int length)
        {
            var i = Count++;
            Ids[i] = id;
            Starts[i] = start;
            Lengths[i] = length;
            Prev[i] = i - 1;
            Next[i] = -1;
            if (i > 0) Next[i - 1] = i;
            else Head = 0;
        }

        public readonly bool Alive(int i) => Lengths[i] > 0;

        public readonly void Unlink(int i)
        {
            var p = Prev[i];
            var n = Next[i];
            if (p >= 0) Next[p] = n;
            if (n >= 0) Prev[n] = p;
            Lengths[i] = 0;
        }

        public readonly void Dispose() => ArrayPool<int>.Shared.Return(_buffer);
    }
}
