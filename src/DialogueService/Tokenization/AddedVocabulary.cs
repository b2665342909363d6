using System.Buffers;
using System.Text.Json;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// A token added on top of the model vocabulary (tokenizer.json <c>added_tokens</c>). Added tokens are matched in the
/// input before anything else and never split. Special ones (control tokens such as <c>&lt;|im_end|&gt;</c>) are
/// matched only when the caller asks to parse special tokens; non-special ones (such as Qwen's <c>&lt;think&gt;</c>)
/// always. <see cref="Normalized"/> tokens are matched in normalized text, the others in the raw input.
/// </summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool Normalized, bool LStrip, bool RStrip)
{
    internal static AddedToken FromJson(JsonElement e)
    {
        var special = e.Bool("special", false);
        return new AddedToken(
            e.Int("id", -1), e.String("content") ?? throw new TokenizerFormatException("added token without content."),
            special, e.Bool("normalized", !special), e.Bool("lstrip", false), e.Bool("rstrip", false));
    }
}

/// <summary>
/// Finds added tokens in text: at the leftmost position where any token starts, the longest token that matches.
/// Candidate positions are found with a vectorized search for the tokens' first characters, so text without
/// added tokens is scanned at memory speed.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly SearchValues<char> _firstChars;
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public bool IsEmpty => _byFirstChar.Count == 0;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
        _firstChars = SearchValues.Create(_byFirstChar.Keys.ToArray());
    }

    /// <summary>The first match at or after <paramref name="from"/>.</summary>
    public bool TryFind(ReadOnlySpan<char> text, int from, out int index, out AddedToken? token)
    {
        token = null;
        index = -1;
        if (IsEmpty) return false;
        for (var i = from; i < text.Length;)
        {
            var found = text[i..].IndexOfAny(_firstChars);
            if (found < 0) return false;
            i += found;
            foreach (var candidate in _byFirstChar[text[i]])
                if (text[i..].StartsWith(candidate.Content, StringComparison.Ordinal))
                {
                    index = i;
                    token = candidate;
                    return true;
                }
            i++;
        }
        return false;
    }
}
