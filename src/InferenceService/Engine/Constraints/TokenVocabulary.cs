using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>
/// The bytes each token id stands for, read from a model folder's Hugging Face <c>tokenizer.json</c>, sorted for
/// the mask walk. Two spellings are understood: byte-level BPE (GPT-2, Llama 3, Qwen: each byte is written as one
/// printable character of the GPT-2 byte-to-unicode table) and SentencePiece with byte fallback (Llama 2: <c>▁</c> is a
/// space, <c>&lt;0xNN&gt;</c> is the byte NN, anything else is UTF-8). Added and special tokens, and ids past the
/// tokenizer's vocabulary, stand for no bytes: a constraint never allows them (end tokens are allowed separately).
/// </summary>
/// <remarks>
/// The sorted order is a token trie laid flat: tokens in byte order, each with the length of the prefix it shares
/// with the one before (<see cref="SharedPrefix"/>). The mask walk reuses the automaton states of that shared prefix
/// and, when a prefix is rejected, skips every following token that starts with it.
/// </remarks>
public sealed class TokenVocabulary
{
    private readonly byte[][] _bytes;

    public TokenVocabulary(byte[][] tokenBytes)
    {
        _bytes = tokenBytes;
        var ids = new List<int>();
        for (var i = 0; i < tokenBytes.Length; i++) if (tokenBytes[i].Length > 0) ids.Add(i);
        ids.Sort((a, b) => { var c = tokenBytes[a].AsSpan().SequenceCompareTo(tokenBytes[b]); return c != 0 ? c : a.CompareTo(b); });
        SortedIds = [.. ids];
        SharedPrefix = new int[SortedIds.Length];
        for (var i = 1; i < SortedIds.Length; i++)
            SharedPrefix[i] = tokenBytes[SortedIds[i - 1]].AsSpan().CommonPrefixLength(tokenBytes[SortedIds[i]]);
        MaxTokenBytes = SortedIds.Length == 0 ? 0 : SortedIds.Max(id => tokenBytes[id].Length);
    }

    /// <summary>Token ids are in [0, Size); the masks have one bit per id.</summary>
    public int Size => _bytes.Length;

    /// <summary>Ids of the tokens that stand for bytes, in byte order.</summary>
    public int[] SortedIds { get; }

    /// <summary>For each position of <see cref="SortedIds"/>: bytes shared with the previous token.</summary>
    public int[] SharedPrefix { get; }

    public int MaxTokenBytes { get; }

    public ReadOnlySpan<byte> BytesOf(int tokenId) => _bytes[tokenId];

    /// <summary>Reads <paramref name="tokenizerJsonPath"/>; ids at or past <paramref name="vocabSize"/> are dropped, missing ones stand for nothing.</summary>
    public static TokenVocabulary Load(string tokenizerJsonPath, int vocabSize)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(tokenizerJsonPath));
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        var byteLevel = UsesByteLevel(root);
        var bytes = new byte[vocabSize][];
        Array.Fill(bytes, []);
        void Set(string piece, int id)
        {
            if ((uint)id < (uint)vocabSize) bytes[id] = byteLevel ? ByteLevelBytes(piece) : SentencePieceBytes(piece);
        }
        var type = model.TryGetProperty("type", out var t) ? t.GetString() : null;
        var vocab = model.GetProperty("vocab");
        if (vocab.ValueKind == JsonValueKind.Object)
            foreach (var entry in vocab.EnumerateObject()) Set(entry.Name, entry.Value.GetInt32());
        else if (vocab.ValueKind == JsonValueKind.Array && type == "Unigram")
        {
            var id = 0;
            foreach (var entry in vocab.EnumerateArray()) Set(entry[0].GetString()!, id++);
        }
        else throw new InvalidDataException($"{tokenizerJsonPath}: tokenizer model '{type}' is not supported for constrained decoding.");
        if (root.TryGetProperty("added_tokens", out var added))
            foreach (var token in added.EnumerateArray())
                if (token.GetProperty("id").GetInt32() is var id && (uint)id < (uint)vocabSize) bytes[id] = [];
        return new TokenVocabulary(bytes);
    }

    private static bool UsesByteLevel(JsonElement root)
    {
        foreach (var section in new[] { "decoder", "pre_tokenizer" })
            if (root.TryGetProperty(section, out var e) && e.ValueKind == JsonValueKind.Object && e.GetRawText().Contains("\"ByteLevel\"", StringComparison.Ordinal))
                return true;
        return false;
    }

    private static readonly Dictionary<char, byte> UnicodeToByte = BuildByteLevelTable();

    /// <summary>GPT-2's table: printable Latin-1 bytes stand for themselves, the others for U+0100 onwards.</summary>
    private static Dictionary<char, byte> BuildByteLevelTable()
    {
        var table = new Dictionary<char, byte>();
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[(char)(printable ? b : next++)] = (byte)b;
        }
        return table;
    }

    private static byte[] ByteLevelBytes(string piece)
    {
        var result = new byte[piece.Length];
        for (var i = 0; i < piece.Length; i++)
            if (!UnicodeToByte.TryGetValue(piece[i], out result[i])) return []; // not a byte-level piece
        return result;
    }

    private static byte[] SentencePieceBytes(string piece)
    {
        if (piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
            return [b];
        return Encoding.UTF8.GetBytes(piece.Replace('▁', ' '));
    }
}
