using System.Buffers;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// Microsoft.ML.Tokenizers' <see cref="Microsoft.ML.Tokenizers.Tokenizer"/> API over the same pipeline. Text is
/// encoded as <see cref="Encode(string, bool, bool)"/> does by default (special tokens added, special-token strings in
/// the text not parsed). These members are not on the serving hot path: they favour clarity.
/// </summary>
public sealed partial class HuggingFaceTokenizer
{
    protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var (ids, offsets, seen) = EncodeWithOffsets(text ?? textSpan.ToString());
        var count = CutFromStart(offsets, settings.MaxTokenCount);
        var tokens = new List<EncodedToken>(count);
        for (var i = 0; i < count; i++) tokens.Add(new EncodedToken(ids[i], IdToToken(ids[i])!, offsets[i]));
        return new EncodeResults<EncodedToken> { Tokens = tokens, NormalizedText = seen, CharsConsumed = Consumed(offsets, count) };
    }

    protected override EncodeResults<int> EncodeToIds(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var input = text ?? textSpan.ToString();
        if (settings.MaxTokenCount == int.MaxValue)
        {
            var all = Encode(input);
            return new EncodeResults<int> { Tokens = all, CharsConsumed = input.Length, NormalizedText = null };
        }
        var (ids, offsets, seen) = EncodeWithOffsets(input);
        var count = CutFromStart(offsets, settings.MaxTokenCount);
        return new EncodeResults<int> { Tokens = ids.GetRange(0, count), NormalizedText = seen, CharsConsumed = Consumed(offsets, count) };
    }

    protected override int CountTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var count = CountIds(text ?? textSpan.ToString(), addSpecialTokens: true, parseSpecialTokens: false);
        return Math.Min(count, settings.MaxTokenCount);
    }

    protected override int GetIndexByTokenCount(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings, bool fromEnd,
        out string? normalizedText, out int tokenCount)
    {
        var (_, offsets, seen) = EncodeWithOffsets(text ?? textSpan.ToString());
        normalizedText = seen;
        var length = seen?.Length ?? (text?.Length ?? textSpan.Length);
        if (!fromEnd)
        {
            tokenCount = CutFromStart(offsets, settings.MaxTokenCount);
            return Consumed(offsets, tokenCount);
        }
        // From the end: the largest tail of at most MaxTokenCount tokens that starts where no earlier token reaches.
        var keep = Math.Min(settings.MaxTokenCount, offsets.Count);
        while (keep > 0 && keep < offsets.Count && offsets[^(keep + 1)].End.Value > offsets[^keep].Start.Value) keep--;
        tokenCount = keep;
        return keep == 0 ? length : offsets[^keep].Start.Value;
    }

    public override string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return Decode(ids is int[] array ? array : ids.ToArray());
    }

    /// <summary>Writes as many whole ids' text as fits (detokenization is not per-token: a prefix is re-decoded until it no longer fits).</summary>
    public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        var all = ids is int[] array ? array : ids.ToArray();
        var text = Decode(all);
        if (text.Length <= destination.Length)
        {
            text.CopyTo(destination);
            (idsConsumed, charsWritten) = (all.Length, text.Length);
            return OperationStatus.Done;
        }
        var consumed = 0;
        var written = "";
        for (var n = 1; n <= all.Length; n++)
        {
            var prefix = Decode(all.AsSpan(0, n));
            if (prefix.Length > destination.Length) break;
            (consumed, written) = (n, prefix);
        }
        written.CopyTo(destination);
        (idsConsumed, charsWritten) = (consumed, written.Length);
        return OperationStatus.DestinationTooSmall;
    }

    /// <summary>
    /// Ids with each token's range: in the input, or in the text the model saw (returned, non-null) when the
    /// normalizer, pre-tokenizer or an added token's lstrip/rstrip rewrote it.
    /// </summary>
    private (List<int> Ids, List<Range> Offsets, string? Seen) EncodeWithOffsets(string text)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        var offsets = new OffsetRecorder(this);
        foreach (var id in _postProcessor.Prefix)
        {
            ids.Add(id);
            offsets.Empty();
        }
        EncodeText(text, ids, parseSpecialTokens: false, offsets);
        foreach (var id in _postProcessor.Suffix)
        {
            ids.Add(id);
            offsets.Empty();
        }
        var seen = offsets.SeenText;
        return (ids, offsets.Offsets, seen == text ? null : seen);
    }

    /// <summary>The most tokens, up to <paramref name="max"/>, whose text ends where the next token's starts (a cut never splits a character).</summary>
    private static int CutFromStart(List<Range> offsets, int max)
    {
        var count = Math.Min(max, offsets.Count);
        while (count > 0 && count < offsets.Count && offsets[count - 1].End.Value > offsets[count].Start.Value) count--;
        return count;
    }

    private static int Consumed(List<Range> offsets, int count) => count == 0 ? 0 : offsets[count - 1].End.Value;

    /// <summary>UTF-8 bytes of input one token stands for; -1 for the unknown token (one code point).</summary>
    private int TokenByteLength(int id)
    {
        var token = IdToToken(id) ?? "";
        if (id == _model.UnknownId) return -1;
        if (_byteLevel) return token.Length;
        if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>') return 1;
        return Encoding.UTF8.GetByteCount(token);
    }

    /// <summary>
    /// Collects token offsets while encoding: the text the model saw is rebuilt section by section (added tokens
    /// as their content), and each piece's tokens are laid over the piece by their UTF-8 byte lengths.
    /// </summary>
    private sealed class OffsetRecorder(HuggingFaceTokenizer owner)
    {
        private readonly StringBuilder _seen = new();
        /// <summary>Position p in the current section's text is position _base + p in the seen text.</summary>
        private int _base;

        public List<Range> Offsets { get; } = new();
        public string SeenText => _seen.ToString();

        public void Empty() => Offsets.Add(new Range(_seen.Length, _seen.Length));

        public void AddedToken(string content)
        {
            var start = _seen.Length;
            _seen.Append(content);
            Offsets.Add(new Range(start, _seen.Length));
        }

        /// <summary>A section of <paramref name="text"/> about to be encoded; <paramref name="seen"/> is the part the model sees.</summary>
        public void Section(string text, TextRange original, TextRange seen)
        {
            _base = _seen.Length - seen.Start;
            _seen.Append(text, seen.Start, seen.Length);
        }

        public void Piece(string text, TextRange piece, List<int> ids, int first)
        {
            var span = text.AsSpan(piece.Start, piece.Length);
            // Code point boundaries: (char index in piece, UTF-8 byte index in piece).
            var charAt = new List<(int Char, int Byte)>(span.Length + 1);
            var bytes = 0;
            for (var i = 0; i < span.Length;)
            {
                charAt.Add((i, bytes));
                if (char.IsHighSurrogate(span[i]) && i + 1 < span.Length && char.IsLowSurrogate(span[i + 1])) { bytes += 4; i += 2; }
                else { bytes += span[i] < 0x80 ? 1 : span[i] < 0x800 ? 2 : 3; i++; }
            }
            charAt.Add((span.Length, bytes));

            var start = 0;
            for (var k = first; k < ids.Count; k++)
            {
                var length = owner.TokenByteLength(ids[k]);
                if (length < 0) length = NextBoundary(charAt, start + 1) - start; // unknown: one code point
                var end = k == ids.Count - 1 ? bytes : Math.Min(bytes, start + length);
                Offsets.Add(new Range(_base + piece.Start + CharFloor(charAt, start), _base + piece.Start + CharCeiling(charAt, end)));
                start = end;
            }
        }

        public void Move(int from, int to) => Offsets[to] = Offsets[from];
        public void Extend(int index, int through) => Offsets[index] = new Range(Offsets[index].Start, Offsets[through].End);
        public void Truncate(int count) => Offsets.RemoveRange(count, Offsets.Count - count);

        private static int NextBoundary(List<(int Char, int Byte)> at, int minByte)
        {
            foreach (var (_, b) in at) if (b >= minByte) return b;
            return at[^1].Byte;
        }

        private static int CharFloor(List<(int Char, int Byte)> at, int byteIndex)
        {
            var c = 0;
            foreach (var (ch, b) in at) { if (b > byteIndex) break; c = ch; }
            return c;
        }

        private static int CharCeiling(List<(int Char, int Byte)> at, int byteIndex)
        {
            foreach (var (ch, b) in at) if (b >= byteIndex) return ch;
            return at[^1].Char;
        }
    }
}
