using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using MLTokenizer = Microsoft.ML.Tokenizers.Tokenizer;
using TextNormalizer = ChatServices.DialogueService.Tokenization.Normalizer;
using TextPreTokenizer = ChatServices.DialogueService.Tokenization.PreTokenizer;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// A Hugging Face tokenizer loaded from <c>tokenizer.json</c> (plus <c>tokenizer_config.json</c> for the special
/// tokens and decoding options), encoding and decoding exactly as the reference implementation does.
/// <para>
/// Encoding pipeline, per input: split on added tokens → per section between them: normalizer → pre-tokenizer →
/// BPE model → post-processor (special tokens around the sequence). Decoding: ids → token strings → decoder chain
/// → optional clean-up of tokenization spaces.
/// </para>
/// <para>
/// Where it knowingly differs from the reference (npm @huggingface/transformers): special-token strings in the text
/// are only parsed when asked (the reference always parses them); an id outside the vocabulary is an error, not the
/// unknown token; character classes and NFC come from the platform's Unicode tables (.NET's and the system ICU),
/// which may classify a code point assigned in a newer Unicode version differently. Special tokens around a
/// sequence come from tokenizer.json's post-processor only (as in the reference; tokenizer_config.json's
/// <c>add_bos_token</c> is not applied on top). Only BPE models load; other model types are refused by name.
/// </para>
/// <para>
/// It is a <see cref="MLTokenizer"/> (Microsoft.ML.Tokenizers), so .NET code that takes the ecosystem's abstraction
/// can use it. Through that API text is encoded with this class's defaults (<see cref="Encode(string, bool, bool)"/>):
/// the post-processor's special tokens are added, special-token strings in the text are not parsed; the file decides
/// normalization and pre-tokenization, so <see cref="EncodeSettings"/>' ConsiderNormalization/ConsiderPreTokenization
/// are ignored. Offsets index <see cref="EncodeResults{T}.NormalizedText"/> when the normalizer or pre-tokenizer
/// rewrote the text (Llama 2's "▁"), else the input.
/// </para>
/// Thread-safe: one instance serves all requests.
/// </summary>
public sealed partial class HuggingFaceTokenizer : MLTokenizer, IChatTokenizer
{
    private readonly TextNormalizer? _normalizer;
    private readonly TextPreTokenizer? _preTokenizer;
    private readonly BpeModel _model;
    private readonly PostProcessor _postProcessor;
    private readonly Decoder? _decoder;
    private readonly bool _byteLevel;
    private readonly bool _cleanUpTokenizationSpaces;

    private readonly Dictionary<string, int> _tokenToId;
    private readonly string?[] _idToToken;
    private readonly HashSet<int> _specialIds;
    private readonly Dictionary<string, AddedToken> _addedByContent = new(StringComparer.Ordinal);

    // Matchers: raw text with / without special tokens, then normalized text with / without.
    private readonly AddedTokenMatcher _rawAll, _rawNonSpecial, _normalizedAll, _normalizedNonSpecial;

    [ThreadStatic] private static PreTokenizedText? t_preTokenized;
    [ThreadStatic] private static List<Section>? t_sections;
    [ThreadStatic] private static List<int>? t_countBuffer;

    private readonly record struct Section(int Start, int Length, AddedToken? Token);

    /// <summary>Added tokens (special and not), by id.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>One past the largest token id.</summary>
    public int VocabularySize => _idToToken.Length;

    public int? BosTokenId { get; }
    public int? EosTokenId { get; }
    public int? PadTokenId { get; }
    public int? UnknownTokenId { get; }
    public string? BosToken { get; }
    public string? EosToken { get; }
    public string? PadToken { get; }

    /// <summary>Ids of every special token (skipped by <c>Decode(..., skipSpecialTokens: true)</c>).</summary>
    public IReadOnlySet<int> SpecialTokenIds => _specialIds;

    /// <summary>The Jinja chat template of tokenizer_config.json (the "default" one when several are named), if any.</summary>
    public string? ChatTemplate { get; }

    private HuggingFaceTokenizer(JsonElement tokenizer, JsonElement config)
    {
        if (!tokenizer.Has("model", out var model)) throw new TokenizerFormatException("tokenizer.json has no model.");
        _model = new BpeModel(model);
        _normalizer = TextNormalizer.FromJson(tokenizer.Has("normalizer", out var n) ? n : default);
        _preTokenizer = TextPreTokenizer.FromJson(tokenizer.Has("pre_tokenizer", out var p) ? p : default);
        _byteLevel = _preTokenizer?.IsByteLevel ?? false;
        _postProcessor = PostProcessor.FromJson(tokenizer.Has("post_processor", out var pp) ? pp : default);

        var added = tokenizer.Array("added_tokens").Select(AddedToken.FromJson).OrderBy(t => t.Id).ToArray();
        AddedTokens = added;
        _tokenToId = new Dictionary<string, int>(_model.Vocabulary, StringComparer.Ordinal);
        var size = _model.Vocabulary.Count == 0 ? 0 : _model.Vocabulary.Values.Max() + 1;
        foreach (var t in added) size = Math.Max(size, t.Id + 1);
        _idToToken = new string?[size];
        foreach (var (token, id) in _model.Vocabulary) _idToToken[id] = token;
        _specialIds = new HashSet<int>();
        foreach (var t in added)
        {
            if (t.Id < 0) throw new TokenizerFormatException($"added token '{t.Content}' has no id.");
            _idToToken[t.Id] = t.Content;
            _tokenToId[t.Content] = t.Id;
            _addedByContent[t.Content] = t;
            if (t.Special) _specialIds.Add(t.Id);
        }
        foreach (var extra in config.Array("additional_special_tokens"))
        {
            var content = extra.ValueKind == JsonValueKind.String ? extra.GetString() : extra.String("content");
            if (content is not null && _tokenToId.TryGetValue(content, out var id)) _specialIds.Add(id);
        }

        _rawAll = new AddedTokenMatcher(added.Where(t => !t.Normalized || _normalizer is null));
        _rawNonSpecial = new AddedTokenMatcher(added.Where(t => (!t.Normalized || _normalizer is null) && !t.Special));
        _normalizedAll = new AddedTokenMatcher(added.Where(t => t.Normalized && _normalizer is not null).Select(Normalized));
        _normalizedNonSpecial = new AddedTokenMatcher(added.Where(t => t.Normalized && _normalizer is not null && !t.Special).Select(Normalized));
        _decoder = Decoder.FromJson(tokenizer.Has("decoder", out var d) ? d : default, _addedByContent.Keys.ToHashSet(StringComparer.Ordinal));

        BosToken = config.TokenContent("bos_token");
        EosToken = config.TokenContent("eos_token");
        PadToken = config.TokenContent("pad_token");
        BosTokenId = TokenToId(BosToken);
        EosTokenId = TokenToId(EosToken);
        PadTokenId = TokenToId(PadToken);
        UnknownTokenId = _model.UnknownId >= 0 ? _model.UnknownId : TokenToId(config.TokenContent("unk_token"));
        _cleanUpTokenizationSpaces = config.Bool("clean_up_tokenization_spaces", true);
        ChatTemplate = config.Has("chat_template", out var template)
            ? template.ValueKind == JsonValueKind.String ? template.GetString()
                : template.EnumerateArray().FirstOrDefault(t => t.String("name") == "default").String("template")
            : null;
    }

    /// <summary>Normalized added tokens are matched in normalized text, so their content is normalized too.</summary>
    private AddedToken Normalized(AddedToken t)
    {
        var content = _normalizer!.Normalize(t.Content);
        _addedByContent.TryAdd(content, t);
        return t with { Content = content };
    }

    /// <summary>Loads tokenizer.json and, when given, tokenizer_config.json.</summary>
    /// <exception cref="TokenizerFormatException">A malformed file or an unsupported component type.</exception>
    public static HuggingFaceTokenizer Load(string tokenizerJsonPath, string? tokenizerConfigPath = null)
    {
        using var tokenizer = File.OpenRead(tokenizerJsonPath);
        using var config = tokenizerConfigPath is not null && File.Exists(tokenizerConfigPath) ? File.OpenRead(tokenizerConfigPath) : null;
        return Load(tokenizer, config);
    }

    /// <summary>Loads a tokenizer from a model folder (tokenizer.json, and tokenizer_config.json when present).</summary>
    public static HuggingFaceTokenizer LoadFromFolder(string folder) =>
        Load(Path.Combine(folder, "tokenizer.json"), Path.Combine(folder, "tokenizer_config.json"));

    public static HuggingFaceTokenizer Load(Stream tokenizerJson, Stream? tokenizerConfigJson)
    {
        try
        {
            using var tokenizer = JsonDocument.Parse(tokenizerJson);
            using var config = tokenizerConfigJson is not null ? JsonDocument.Parse(tokenizerConfigJson) : JsonDocument.Parse("{}");
            return new HuggingFaceTokenizer(tokenizer.RootElement, config.RootElement);
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException("tokenizer file is not valid JSON: " + e.Message, e);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException or IndexOutOfRangeException)
        {
            throw new TokenizerFormatException("tokenizer file has an unexpected shape: " + e.Message, e);
        }
    }

    public int? TokenToId(string? token) => token is not null && _tokenToId.TryGetValue(token, out var id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public bool IsSpecial(int id) => _specialIds.Contains(id);

    /// <summary>Encodes text to token ids.</summary>
    /// <param name="addSpecialTokens">Add the post-processor's special tokens (for example BOS) around the sequence.</param>
    /// <param name="parseSpecialTokens">
    /// Recognize special-token strings written in the text (such as <c>&lt;|im_start|&gt;</c>) as those control tokens.
    /// Leave false for user-supplied text, so that users cannot inject control tokens; set it for text rendered by a
    /// chat template.
    /// </param>
    public int[] Encode(string text, bool addSpecialTokens = true, bool parseSpecialTokens = false)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        Encode(text, ids, addSpecialTokens, parseSpecialTokens);
        return ids.ToArray();
    }

    /// <summary>Appends the token ids of <paramref name="text"/> to <paramref name="ids"/> (no allocation per token).</summary>
    public void Encode(string text, List<int> ids, bool addSpecialTokens = true, bool parseSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(ids);
        if (addSpecialTokens) ids.AddRange(_postProcessor.Prefix);
        EncodeText(text, ids, parseSpecialTokens);
        if (addSpecialTokens) ids.AddRange(_postProcessor.Suffix);
    }

    /// <summary>The number of tokens <see cref="Encode(string, bool, bool)"/> returns, without keeping them.</summary>
    /// <remarks>Reached through <see cref="IChatTokenizer"/>: on this class, <c>CountTokens(string, bool, bool)</c> is
    /// Microsoft.ML.Tokenizers' (whose flags mean pre-tokenization and normalization).</remarks>
    int IChatTokenizer.CountTokens(string text, bool addSpecialTokens, bool parseSpecialTokens) => CountIds(text, addSpecialTokens, parseSpecialTokens);

    private int CountIds(string text, bool addSpecialTokens, bool parseSpecialTokens)
    {
        var buffer = t_countBuffer ??= new List<int>(1024);
        buffer.Clear();
        Encode(text, buffer, addSpecialTokens, parseSpecialTokens);
        var count = buffer.Count;
        if (buffer.Capacity > 1 << 16) t_countBuffer = null; // keep the per-thread buffer small
        return count;
    }

    private void EncodeText(string text, List<int> ids, bool parseSpecialTokens, OffsetRecorder? offsets = null)
    {
        var sections = t_sections ??= new List<Section>();
        sections.Clear();
        SplitOnAddedTokens(text, new TextRange(0, text.Length), parseSpecialTokens ? _rawAll : _rawNonSpecial, sections);

        var pre = t_preTokenized ??= new PreTokenizedText();
        try
        {
            EncodeSections(text, sections, pre, ids, parseSpecialTokens, offsets);
        }
        finally
        {
            pre.Release();
            if (sections.Capacity > 1 << 12) t_sections = null;
        }
    }

    private void EncodeSections(string text, List<Section> sections, PreTokenizedText pre, List<int> ids, bool parseSpecialTokens, OffsetRecorder? offsets)
    {
        for (var index = 0; index < sections.Count; index++)
        {
            var section = sections[index];
            if (section.Token is not null)
            {
                ids.Add(section.Token.Id);
                offsets?.AddedToken(section.Token.Content);
                continue;
            }
            if (section.Length == 0) continue;
            var sectionStart = ids.Count;
            if (_normalizer is null)
            {
                EncodeSection(pre, text, new TextRange(section.Start, section.Length), index, ids, offsets);
            }
            else
            {
                var normalized = _normalizer.Normalize(section.Start == 0 && section.Length == text.Length ? text : text.Substring(section.Start, section.Length));
                var matcher = parseSpecialTokens ? _normalizedAll : _normalizedNonSpecial;
                if (matcher.IsEmpty)
                {
                    EncodeSection(pre, normalized, new TextRange(0, normalized.Length), index, ids, offsets);
                }
                else
                {
                    // Normalized added tokens: a second split, inside the normalized section (its pieces are
                    // appended after the outer sections and consumed here).
                    var first = sections.Count;
                    SplitOnAddedTokens(normalized, new TextRange(0, normalized.Length), matcher, sections);
                    for (var j = first; j < sections.Count; j++)
                    {
                        if (sections[j].Token is { } token)
                        {
                            ids.Add(token.Id);
                            offsets?.AddedToken(token.Content);
                        }
                        else if (sections[j].Length > 0) EncodeSection(pre, normalized, new TextRange(sections[j].Start, sections[j].Length), index, ids, offsets);
                    }
                    sections.RemoveRange(first, sections.Count - first);
                }
            }
            if (_model.FuseUnknown) FuseUnknown(ids, sectionStart, offsets);
        }
    }

    private void EncodeSection(PreTokenizedText pre, string text, TextRange range, int sectionIndex, List<int> ids, OffsetRecorder? offsets)
    {
        if (_preTokenizer is null)
        {
            var before = ids.Count;
            _model.Encode(text.AsSpan(range.Start, range.Length), _byteLevel, ids);
            offsets?.Section(text, range, range);
            offsets?.Piece(text, range, ids, before);
            return;
        }
        pre.Reset(text, range);
        _preTokenizer.PreTokenize(pre, sectionIndex);
        // A pre-tokenizer that rewrites (Metaspace) leaves a new text holding only this section's pieces.
        offsets?.Section(pre.Text, range, ReferenceEquals(pre.Text, text) ? range : new TextRange(0, pre.Text.Length));
        foreach (var piece in pre.Pieces)
        {
            var before = ids.Count;
            _model.Encode(pre.Text.AsSpan(piece.Start, piece.Length), _byteLevel, ids);
            offsets?.Piece(pre.Text, piece, ids, before);
        }
    }

    /// <summary>
    /// Cuts <paramref name="range"/> into text sections and added-token sections (never empty-text sections, but
    /// lstrip/rstrip may empty a neighbour: it stays, so that section indexes match the reference).
    /// </summary>
    private static void SplitOnAddedTokens(string text, TextRange range, AddedTokenMatcher matcher, List<Section> sections)
    {
        var first = sections.Count;
        var span = text.AsSpan(0, range.End);
        var pos = range.Start;
        while (matcher.TryFind(span, pos, out var index, out var token))
        {
            if (index > pos) sections.Add(new Section(pos, index - pos, null));
            sections.Add(new Section(index, token!.Content.Length, token));
            pos = index + token.Content.Length;
        }
        if (pos < range.End) sections.Add(new Section(pos, range.End - pos, null));

        for (var i = first; i < sections.Count; i++)
        {
            if (sections[i].Token is not { } t) continue;
            if (t.LStrip && i > first && sections[i - 1].Token is null)
            {
                var s = sections[i - 1];
                var length = s.Length;
                while (length > 0 && CharClass.IsJsWhiteSpace(text[s.Start + length - 1])) length--;
                sections[i - 1] = s with { Length = length };
            }
            if (t.RStrip && i + 1 < sections.Count && sections[i + 1].Token is null)
            {
                var s = sections[i + 1];
                var skip = 0;
                while (skip < s.Length && CharClass.IsJsWhiteSpace(text[s.Start + skip])) skip++;
                sections[i + 1] = new Section(s.Start + skip, s.Length - skip, null);
            }
        }
    }

    /// <summary>fuse_unk: consecutive unknown tokens of a section collapse into one.</summary>
    private void FuseUnknown(List<int> ids, int start, OffsetRecorder? offsets)
    {
        var unk = _model.UnknownId;
        var write = start;
        for (var read = start; read < ids.Count; read++)
        {
            if (!(ids[read] == unk && write > start && ids[write - 1] == unk))
            {
                ids[write] = ids[read];
                offsets?.Move(read, write);
                write++;
            }
            else
            {
                offsets?.Extend(write - 1, read);
            }
        }
        ids.RemoveRange(write, ids.Count - write);
        offsets?.Truncate(ids.Count);
    }

    /// <summary>Decodes token ids to text.</summary>
    /// <param name="skipSpecialTokens">Leave out special tokens (BOS, EOS, chat control tokens).</param>
    /// <param name="cleanUpTokenizationSpaces">
    /// Remove the space before punctuation and contractions (" ." → "."); null uses tokenizer_config.json's
    /// <c>clean_up_tokenization_spaces</c> (default true), as the reference does.
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException">An id outside the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpTokenizationSpaces = null)
    {
        var tokens = new List<string>(ids.Length);
        foreach (var id in ids)
        {
            var token = IdToToken(id) ?? throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is not in the vocabulary (size {VocabularySize}).");
            if (skipSpecialTokens && _specialIds.Contains(id)) continue;
            tokens.Add(token);
        }
        if (tokens.Count == 0) return "";
        string text;
        if (_decoder is null)
        {
            text = string.Join(' ', tokens);
        }
        else
        {
            _decoder.DecodeChain(tokens);
            text = string.Concat(tokens);
        }
        return cleanUpTokenizationSpaces ?? _cleanUpTokenizationSpaces ? CleanUpTokenizationSpaces(text) : text;
    }

    /// <summary>A detokenizer for one generated sequence: feed ids as they come, receive only complete text.</summary>
    public StreamingDetokenizer CreateStreamingDetokenizer(bool skipSpecialTokens = true) => new(this, skipSpecialTokens);

    /// <summary>Itself: this tokenizer is a Microsoft.ML.Tokenizers tokenizer.</summary>
    MLTokenizer IChatTokenizer.AsMLTokenizer() => this;

    internal static string CleanUpTokenizationSpaces(string text)
    {
        if (!text.Contains(' ')) return text;
        var sb = new StringBuilder(text);
        sb.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
            .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
        return sb.ToString();
    }
}
