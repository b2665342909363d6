namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// Incremental decoding of one generated sequence. <see cref="Push"/> takes one token id and returns the text that
/// became final with it (possibly empty); <see cref="Flush"/> returns what is left at the end.
/// <para>
/// Invariant: the concatenation of everything returned equals <c>Decode(all ids, skipSpecialTokens, cleanUp: false)</c>,
/// and no returned chunk ends inside a character: a token that ends with part of a multi-byte UTF-8 sequence
/// (byte-level or byte-fallback tokens split characters freely) is held back until the sequence completes.
/// </para>
/// <para>
/// How: text is decoded over a short window of ids starting at <c>_prefixStart</c>; the text of the window's first
/// part (<c>_prefixStart.._readStart</c>, already emitted) is subtracted from the text of the whole window. Decoding a
/// window rather than single tokens keeps decoders that look at neighbours (a leading-space strip on the first
/// token, byte-fallback runs) exact. While the window's text ends with U+FFFD the last character may be incomplete,
/// so nothing is emitted. The window only ever starts at a token boundary where the text was complete.
/// </para>
/// Not thread-safe: one instance per sequence.
/// </summary>
public sealed class StreamingDetokenizer
{
    private readonly IChatTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _ids = new();
    private int _prefixStart;
    private int _readStart;
    /// <summary>Decode of ids[_prefixStart.._readStart]: text already emitted, the part to subtract.</summary>
    private string _prefixText = "";

    internal StreamingDetokenizer(IChatTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds one token id; returns the newly completed text ("" while a character is still incomplete).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in the vocabulary.</exception>
    public string Push(int id)
    {
        if (_tokenizer.IdToToken(id) is null)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is not in the vocabulary.");
        _ids.Add(id);
        var text = Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids)[_prefixStart..]);
        if (text.Length <= _prefixText.Length || text.EndsWith('\uFFFD') || !text.StartsWith(_prefixText, StringComparison.Ordinal))
            return "";
        var emitted = text[_prefixText.Length..];
        Advance();
        return emitted;
    }

    /// <summary>Adds several ids (a decoding step may yield more than one); returns the text they complete.</summary>
    public string Push(ReadOnlySpan<int> ids)
    {
        if (ids.Length == 1) return Push(ids[0]);
        var sb = new System.Text.StringBuilder();
        foreach (var id in ids) sb.Append(Push(id));
        return sb.ToString();
    }

    /// <summary>Returns the text still held back (an incomplete character decodes as U+FFFD) and resets.</summary>
    public string Flush()
    {
        var text = Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids)[_prefixStart..]);
        var rest = text.StartsWith(_prefixText, StringComparison.Ordinal) ? text[_prefixText.Length..] : text;
        _ids.Clear();
        _prefixStart = _readStart = 0;
        _prefixText = "";
        return rest;
    }

    private void Advance()
    {
        _prefixStart = _readStart;
        _readStart = _ids.Count;
        // Drop ids that no window will use again, so a long generation keeps a short list.
        if (_prefixStart > 64)
        {
            _ids.RemoveRange(0, _prefixStart);
            _readStart -= _prefixStart;
            _prefixStart = 0;
        }
        _prefixText = Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids)[_prefixStart.._readStart]);
    }

    private string Decode(ReadOnlySpan<int> ids) =>
        ids.IsEmpty ? "" : _tokenizer.Decode(ids, _skipSpecialTokens, cleanUpTokenizationSpaces: false);
}
