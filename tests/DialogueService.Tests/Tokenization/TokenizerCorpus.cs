using System.Text;
using System.Text.Json;

namespace ChatServices.DialogueService.Tests.Tokenization;

/// <summary>
/// The texts the tokenizer is checked and measured on: the committed tokenizer-corpus.json (English, CJK, Arabic,
/// Hindi and other scripts, mixed scripts, emoji with ZWJ sequences, skin tones and flags, code, whitespace runs,
/// numbers, special-token strings written as user text, Unicode edge cases), random Unicode strings, and random
/// recombinations of the corpus's words, both from a fixed seed.
/// <para>
/// The random strings include lone surrogates: .NET and JavaScript strings can both hold them, and both sides
/// encode one as U+FFFD's UTF-8 bytes, so ids must still agree (decoding cannot give the lone surrogate back).
/// Code points come from blocks assigned long ago, so that the Unicode versions of .NET and Node (which differ)
/// classify them alike.
/// </para>
/// </summary>
public static class TokenizerCorpus
{
    public const int RandomTextCount = 200;
    public const int RandomSeed = 20261122;

    public static IReadOnlyList<string> Fixed(string repoRoot) =>
        JsonSerializer.Deserialize<string[]>(File.ReadAllText(Path.Combine(repoRoot, "tests", "DialogueService.Tests", "Tokenization", "tokenizer-corpus.json")))!;

    public static IReadOnlyList<string> All(string repoRoot)
    {
        var fixedTexts = Fixed(repoRoot);
        return [.. fixedTexts, .. Random(RandomTextCount, RandomSeed), .. Recombined(fixedTexts, RecombinedTextCount, RandomSeed)];
    }

    public const int RecombinedTextCount = 150;

    /// <summary>
    /// Words of the fixed texts in random order and scripts, joined by random separators (spaces, runs of spaces,
    /// tabs, newlines, nothing): many more word boundaries and merges than the fixed texts have.
    /// </summary>
    public static IReadOnlyList<string> Recombined(IReadOnlyList<string> source, int count, int seed)
    {
        var words = source.SelectMany(t => t.Split([' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries)).Distinct().ToArray();
        string[] separators = [" ", " ", " ", "  ", "\n", "\t", "", " \n", "\r\n", "    "];
        var random = new Random(seed);
        var texts = new List<string>(count);
        for (var t = 0; t < count; t++)
        {
            var sb = new StringBuilder();
            var n = random.Next(1, 24);
            for (var i = 0; i < n; i++) sb.Append(words[random.Next(words.Length)]).Append(separators[random.Next(separators.Length)]);
            texts.Add(sb.ToString());
        }
        return texts;
    }

    // (first, last, weight): where random code points are drawn from.
    private static readonly (int First, int Last, int Weight)[] Blocks =
    [
        (0x20, 0x7E, 30), (0x30, 0x39, 4), ('\t', '\r', 4), (0xA0, 0x17F, 4), (0x300, 0x36F, 2), (0x391, 0x3C9, 2),
        (0x410, 0x44F, 3), (0x621, 0x64A, 2), (0x660, 0x669, 1), (0x905, 0x939, 2), (0x2000, 0x200D, 2), (0x2010, 0x2027, 2),
        (0x3000, 0x3000, 1), (0x3041, 0x3096, 2), (0x30A1, 0x30FA, 2), (0x4E00, 0x9FA5, 6), (0xAC00, 0xD7A3, 3), (0xFF10, 0xFF5A, 1),
        (0xFE0F, 0xFE0F, 1), (0x1F300, 0x1F5FF, 3), (0x1F600, 0x1F64F, 3), (0x1F3FB, 0x1F3FF, 1), (0x1F1E6, 0x1F1FF, 1),
        (0x20000, 0x2A6D6, 2), (0x1D400, 0x1D454, 1), (0x1D7CE, 0x1D7FF, 1), (0xD800, 0xDFFF, 1),
    ];

    public static IReadOnlyList<string> Random(int count, int seed)
    {
        var random = new Random(seed);
        var totalWeight = Blocks.Sum(b => b.Weight);
        var texts = new List<string>(count);
        var sb = new StringBuilder();
        for (var t = 0; t < count; t++)
        {
            sb.Clear();
            var length = random.Next(1, 48);
            for (var i = 0; i < length; i++)
            {
                var pick = random.Next(totalWeight);
                var block = Blocks[0];
                foreach (var b in Blocks)
                {
                    if (pick < b.Weight)
                    {
                        block = b;
                        break;
                    }
                    pick -= b.Weight;
                }
                var cp = random.Next(block.First, block.Last + 1);
                if (cp is >= 0xD800 and <= 0xDFFF) sb.Append((char)cp); // a lone surrogate on purpose
                else sb.Append(char.ConvertFromUtf32(cp));
            }
            texts.Add(sb.ToString());
        }
        return texts;
    }
}
