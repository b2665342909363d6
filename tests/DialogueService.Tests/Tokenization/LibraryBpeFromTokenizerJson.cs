using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> built by hand from a byte-level BPE tokenizer.json (the library
/// cannot load the file itself: its tokenizer.json loader takes Unigram models only): the vocabulary and merges, byte
/// level, the added tokens as special tokens, and the file's split regex (GPT-2's built-in one when the ByteLevel
/// pre-tokenizer splits) as a <see cref="RegexPreTokenizer"/>. Used to measure how far the library is from the
/// reference (the README's "why our own loader") and as a speed peer in bench/TokenizerBench.
/// </summary>
public static class LibraryBpeFromTokenizerJson
{
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>The BpeTokenizer for a byte-level BPE file; null for a file that is not byte-level (Llama 2, which needs its SentencePiece .model).</summary>
    public static BpeTokenizer? Create(string tokenizerJsonPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(tokenizerJsonPath));
        var root = doc.RootElement;
        var preTokenizer = root.GetProperty("pre_tokenizer").GetRawText();
        if (!preTokenizer.Contains("\"ByteLevel\"", StringComparison.Ordinal)) return null;
        var model = root.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())).ToList();
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.String ? m.GetString()! : $"{m[0].GetString()} {m[1].GetString()}").ToList();
        var special = root.GetProperty("added_tokens").EnumerateArray()
            .ToDictionary(t => t.GetProperty("content").GetString()!, t => t.GetProperty("id").GetInt32());
        var pattern = FindRegex(root.GetProperty("pre_tokenizer")) ?? Gpt2Pattern;
        return BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            SpecialTokens = special,
            PreTokenizer = new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), special),
        });
    }

    private static string? FindRegex(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Object)
        {
            if (e.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object && p.TryGetProperty("Regex", out var r)) return r.GetString();
            foreach (var child in e.EnumerateObject())
                if (FindRegex(child.Value) is { } found) return found;
        }
        else if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (var child in e.EnumerateArray())
                if (FindRegex(child) is { } found) return found;
        }
        return null;
    }
}
