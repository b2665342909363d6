using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using MLTokenizer = Microsoft.ML.Tokenizers.Tokenizer;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// Microsoft.ML.Tokenizers' own tokenizers for the formats it reads — a SentencePiece <c>tokenizer.model</c>
/// (<see cref="SentencePieceTokenizer"/>) and a tiktoken <c>*.tiktoken</c> file (<see cref="TiktokenTokenizer"/>) —
/// adapted to <see cref="IChatTokenizer"/>.
/// <para>
/// What the adapter adds: the library tokenizers match their special tokens in any text they are given, so the
/// adapter keeps two instances. Text is encoded by one that knows no special tokens, between the added tokens the
/// adapter finds itself (special ones only when asked to parse them; non-special ones always, as tokenizer.json
/// does); decoding and <see cref="AsMLTokenizer"/> use one that knows them all. Added tokens come from
/// tokenizer_config.json's <c>added_tokens_decoder</c>, plus the SentencePiece model's own BOS/EOS/unknown pieces or
/// the tiktoken encoding's published special tokens. Between added tokens, a SentencePiece text gets its dummy
/// prefix each time (as Hugging Face's legacy Llama tokenizer does).
/// </para>
/// </summary>
public sealed class LibraryTokenizer : IChatTokenizer
{
    private readonly MLTokenizer _plain;
    private readonly MLTokenizer _full;
    private readonly Func<IEnumerable<int>, bool, string> _decode;
    private readonly string?[] _idToToken;
    private readonly int[] _prefix;
    private readonly int[] _suffix;
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly AddedTokenMatcher _all, _nonSpecial;
    private readonly bool _cleanUpTokenizationSpaces;
    private readonly Func<string, int[]> _encodePlain;

    private LibraryTokenizer(MLTokenizer plain, MLTokenizer full, Func<string, int[]> encodePlain, Func<IEnumerable<int>, bool, string> decode,
        string?[] idToToken, IReadOnlyList<AddedToken> added, int[] prefix, int[] suffix, JsonElement config)
    {
        _plain = plain;
        _full = full;
        _encodePlain = encodePlain;
        _decode = decode;
        _prefix = prefix;
        _suffix = suffix;
        AddedTokens = added;
        _addedById = added.ToDictionary(t => t.Id);
        var size = Math.Max(idToToken.Length, added.Count == 0 ? 0 : added.Max(t => t.Id) + 1);
        _idToToken = new string?[size];
        idToToken.CopyTo(_idToToken, 0);
        foreach (var t in added) _idToToken[t.Id] = t.Content;
        _all = new AddedTokenMatcher(added);
        _nonSpecial = new AddedTokenMatcher(added.Where(t => !t.Special));
        BosToken = config.TokenContent("bos_token");
        EosToken = config.TokenContent("eos_token");
        _cleanUpTokenizationSpaces = config.Bool("clean_up_tokenization_spaces", false);
    }

    /// <summary>Which library tokenizer this is ("SentencePiece" or "tiktoken").</summary>
    public required string Format { get; init; }

    public int VocabularySize => _idToToken.Length;
    public IReadOnlyList<AddedToken> AddedTokens { get; }
    public string? BosToken { get; private init; }
    public string? EosToken { get; private init; }
    public int? EosTokenId => EosToken is not null && AddedTokens.FirstOrDefault(t => t.Content == EosToken) is { } eos ? eos.Id : null;

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public int? TokenToId(string? token)
    {
        if (token is null) return null;
        _tokenToId ??= Enumerable.Range(0, _idToToken.Length).Where(i => _idToToken[i] is not null)
            .GroupBy(i => _idToToken[i]!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        return _tokenToId.TryGetValue(token, out var id) ? id : null;
    }

    private Dictionary<string, int>? _tokenToId;
    public bool IsSpecial(int id) => _addedById.TryGetValue(id, out var t) && t.Special;
    public MLTokenizer AsMLTokenizer() => _full;

    public void Encode(string text, List<int> ids, bool addSpecialTokens = true, bool parseSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (addSpecialTokens) ids.AddRange(_prefix);
        var matcher = parseSpecialTokens ? _all : _nonSpecial;
        var pos = 0;
        while (matcher.TryFind(text, pos, out var index, out var token))
        {
            if (index > pos) ids.AddRange(_encodePlain(text[pos..index]));
            ids.Add(token!.Id);
            pos = index + token.Content.Length;
        }
        if (pos < text.Length) ids.AddRange(_encodePlain(pos == 0 ? text : text[pos..]));
        if (addSpecialTokens) ids.AddRange(_suffix);
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpTokenizationSpaces = null)
    {
        var kept = new List<int>(ids.Length);
        foreach (var id in ids)
        {
            if (IdToToken(id) is null) throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is not in the vocabulary (size {VocabularySize}).");
            if (!(skipSpecialTokens && IsSpecial(id))) kept.Add(id);
        }
        if (kept.Count == 0) return "";
        var text = _decode(kept, !skipSpecialTokens);
        return cleanUpTokenizationSpaces ?? _cleanUpTokenizationSpaces ? HuggingFaceTokenizer.CleanUpTokenizationSpaces(text) : text;
    }

    /// <summary>A SentencePiece model (<c>tokenizer.model</c>), with tokenizer_config.json when present.</summary>
    /// <exception cref="TokenizerFormatException">Not a SentencePiece model the library reads.</exception>
    public static LibraryTokenizer LoadSentencePiece(string modelPath, string? configPath = null)
    {
        var bytes = File.ReadAllBytes(modelPath);
        using var configDoc = ReadConfig(configPath);
        var config = configDoc.RootElement;
        SentencePieceTokenizer plain;
        try
        {
            plain = SentencePieceTokenizer.Create(new MemoryStream(bytes), addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new TokenizerFormatException($"{modelPath} is not a SentencePiece model Microsoft.ML.Tokenizers reads: {e.Message}", e);
        }
        var idToToken = new string?[plain.Vocabulary.Count == 0 ? 0 : plain.Vocabulary.Values.Max() + 1];
        foreach (var (token, id) in plain.Vocabulary) idToToken[id] = token;

        var added = AddedFromConfig(config);
        void AddPiece(string token, int id)
        {
            if (id >= 0 && added.All(t => t.Id != id)) added.Add(new AddedToken(id, token, Special: true, Normalized: false, LStrip: false, RStrip: false));
        }
        AddPiece(plain.UnknownToken, plain.UnknownId);
        AddPiece(plain.BeginningOfSentenceToken, plain.BeginningOfSentenceId);
        AddPiece(plain.EndOfSentenceToken, plain.EndOfSentenceId);
        var specialTokens = added.ToDictionary(t => t.Content, t => t.Id);
        var full = SentencePieceTokenizer.Create(new MemoryStream(bytes),
            addBeginningOfSentence: config.Bool("add_bos_token", true), addEndOfSentence: config.Bool("add_eos_token", false), specialTokens);

        int[] prefix = config.Bool("add_bos_token", true) ? [plain.BeginningOfSentenceId] : [];
        int[] suffix = config.Bool("add_eos_token", false) ? [plain.EndOfSentenceId] : [];
        return new LibraryTokenizer(plain, full,
            text => [.. plain.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false)],
            (ids, _) => DecodePieces(ids, idToToken, specialTokens),
            idToToken, added.OrderBy(t => t.Id).ToArray(), prefix, suffix, config)
        {
            Format = "SentencePiece",
            BosToken = config.TokenContent("bos_token") ?? plain.BeginningOfSentenceToken,
            EosToken = config.TokenContent("eos_token") ?? plain.EndOfSentenceToken,
        };
    }

    /// <summary>
    /// SentencePiece decoding from the pieces: "▁" is a space, &lt;0xNN&gt; pieces are bytes, added tokens are their
    /// text, and the dummy prefix (one leading space) is dropped when the first piece starts with "▁" — decided by the
    /// first piece alone, so that decoding any window of ids is consistent with decoding the whole sequence, which
    /// streaming detokenization relies on. (The library's Decode also drops a "▁" after leading byte pieces, which
    /// loses a space when a stream's window starts with a byte such as a newline.)
    /// </summary>
    private static string DecodePieces(IEnumerable<int> ids, string?[] pieces, IReadOnlyDictionary<string, int> added)
    {
        var addedIds = added.Values.ToHashSet();
        var bytes = new List<byte>();
        var first = true;
        Span<byte> scratch = stackalloc byte[4];
        foreach (var id in ids)
        {
            var piece = id < pieces.Length ? pieces[id] : null;
            if (piece is null || addedIds.Contains(id))
            {
                piece = added.FirstOrDefault(p => p.Value == id).Key ?? "";
                bytes.AddRange(Encoding.UTF8.GetBytes(piece));
                first = false;
                continue;
            }
            if (piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
                && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
            {
                bytes.Add(b);
                first = false;
                continue;
            }
            var text = piece.Replace('\u2581', ' ');
            if (first && text.StartsWith(' ')) text = text[1..];
            first = false;
            bytes.AddRange(Encoding.UTF8.GetBytes(text));
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>
    /// The tiktoken encodings whose pre-tokenization pattern and special tokens are published. A .tiktoken file holds
    /// only the ranks; the pattern comes from the encoding's name (the file's name).
    /// </summary>
    private static readonly Dictionary<string, (string Pattern, (string Token, int Id)[] Special)> Encodings = new(StringComparer.OrdinalIgnoreCase)
    {
        ["gpt2"] = (Gpt2Pattern, [("<|endoftext|>", 50256)]),
        ["r50k_base"] = (Gpt2Pattern, [("<|endoftext|>", 50256)]),
        ["p50k_base"] = (Gpt2Pattern, [("<|endoftext|>", 50256)]),
        ["cl100k_base"] = (@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            [("<|endoftext|>", 100257), ("<|fim_prefix|>", 100258), ("<|fim_middle|>", 100259), ("<|fim_suffix|>", 100260), ("<|endofprompt|>", 100276)]),
        ["o200k_base"] = (@"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            [("<|endoftext|>", 199999), ("<|endofprompt|>", 200018)]),
    };

    private const string Gpt2Pattern = @"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>The tiktoken encodings this loader knows, by file name (without .tiktoken).</summary>
    public static IReadOnlyCollection<string> KnownTiktokenEncodings => Encodings.Keys;

    /// <summary>A tiktoken file named for its encoding (<c>cl100k_base.tiktoken</c>, ...), with tokenizer_config.json when present.</summary>
    /// <exception cref="TokenizerFormatException">An encoding whose pattern is not known, or a malformed file.</exception>
    public static LibraryTokenizer LoadTiktoken(string path, string? configPath = null) =>
        LoadTiktoken(File.ReadAllBytes(path), Path.GetFileNameWithoutExtension(path), configPath);

    public static LibraryTokenizer LoadTiktoken(byte[] ranks, string encoding, string? configPath = null)
    {
        if (!Encodings.TryGetValue(encoding, out var known))
            throw new TokenizerFormatException(
                $"tiktoken file '{encoding}.tiktoken': its pre-tokenization pattern is not known (a .tiktoken file holds only ranks). " +
                $"Known encodings: {string.Join(", ", Encodings.Keys)}; or ship a tokenizer.json.");
        using var configDoc = ReadConfig(configPath);
        var config = configDoc.RootElement;

        var added = AddedFromConfig(config);
        foreach (var (token, id) in known.Special)
            if (added.All(t => t.Id != id)) added.Add(new AddedToken(id, token, Special: true, Normalized: false, LStrip: false, RStrip: false));
        var specialTokens = added.ToDictionary(t => t.Content, t => t.Id);
        var regex = new Regex(known.Pattern, RegexOptions.Compiled);
        TiktokenTokenizer plain, full;
        try
        {
            plain = TiktokenTokenizer.Create(new MemoryStream(ranks), new RegexPreTokenizer(regex, null), normalizer: null, specialTokens: null);
            full = TiktokenTokenizer.Create(new MemoryStream(ranks), new RegexPreTokenizer(regex, specialTokens), normalizer: null, specialTokens);
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or ArgumentException)
        {
            throw new TokenizerFormatException($"{encoding}.tiktoken is not a tiktoken file: {e.Message}", e);
        }
        var idToToken = TokenStrings(ranks, encoding);
        return new LibraryTokenizer(plain, full,
            text => [.. plain.EncodeToIds(text)],
            (ids, _) => full.Decode(ids),
            idToToken, added.OrderBy(t => t.Id).ToArray(), [], [], config)
        {
            Format = "tiktoken",
            BosToken = config.TokenContent("bos_token"),
            EosToken = config.TokenContent("eos_token") ?? "<|endoftext|>",
        };
    }

    /// <summary>
    /// Token strings of a tiktoken file, written in the byte-level alphabet (as GPT-2's tokenizer.json does): lines of
    /// "base64 rank", or of "base64" alone (rank = line number) after a "Capacity: N" line, as the library's own data
    /// packages write them. The library parses the file for encoding; this is only for <see cref="IdToToken"/>.
    /// </summary>
    private static string?[] TokenStrings(byte[] ranks, string encoding)
    {
        var tokens = new Dictionary<int, string>();
        var next = 0;
        foreach (var raw in Encoding.UTF8.GetString(ranks).Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var space = line.IndexOf(' ');
            var rank = next;
            if (space > 0 && !int.TryParse(line.AsSpan(space + 1), out rank))
                throw new TokenizerFormatException($"{encoding}.tiktoken: a line is not '<base64> <rank>'.");
            var bytes = Convert.FromBase64String(space > 0 ? line[..space] : line);
            tokens[rank] = string.Create(bytes.Length, bytes, (span, b) =>
            {
                for (var i = 0; i < b.Length; i++) span[i] = ByteLevelAlphabet.ByteToChar[b[i]];
            });
            next = rank + 1;
        }
        var result = new string?[tokens.Count == 0 ? 0 : tokens.Keys.Max() + 1];
        foreach (var (id, token) in tokens) result[id] = token;
        return result;
    }

    /// <summary>tokenizer_config.json's <c>added_tokens_decoder</c>: {"id": {"content", "special", ...}}.</summary>
    private static List<AddedToken> AddedFromConfig(JsonElement config)
    {
        var added = new List<AddedToken>();
        if (!config.Has("added_tokens_decoder", out var decoder) || decoder.ValueKind != JsonValueKind.Object) return added;
        foreach (var entry in decoder.EnumerateObject())
            if (int.TryParse(entry.Name, out var id) && entry.Value.String("content") is { Length: > 0 } content)
                added.Add(new AddedToken(id, content, entry.Value.Bool("special", false), Normalized: false,
                    entry.Value.Bool("lstrip", false), entry.Value.Bool("rstrip", false)));
        return added;
    }

    private static JsonDocument ReadConfig(string? path)
    {
        try
        {
            return path is not null && File.Exists(path) ? JsonDocument.Parse(File.ReadAllText(path)) : JsonDocument.Parse("{}");
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException($"{path} is not valid JSON: {e.Message}", e);
        }
    }
}
