using System.Text;

namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>
/// How the characters of a regular expression or grammar literal become bytes: as plain UTF-8 (regex and GBNF
/// constraints), or as the content of a JSON string (a JSON Schema <c>pattern</c>), where <c>"</c>, <c>\</c> and
/// control characters must be written as escapes.
/// </summary>
public sealed class CharacterEncoding
{
    public static readonly CharacterEncoding Utf8 = new(json: false);
    public static readonly CharacterEncoding JsonString = new(json: true);

    private static readonly CodePointSet NeedsEscape = CodePointSet.Of(('"', '"'), ('\\', '\\'), (0, 0x1F));
    private readonly bool _json;

    private CharacterEncoding(bool json) => _json = json;

    public GrammarNode Char(int codePoint)
    {
        if (codePoint is >= 0xD800 and <= 0xDFFF) return new ByteNode(default); // a lone surrogate is no character
        if (_json && NeedsEscape.Contains(codePoint)) return GrammarNode.Literal(JsonEscape(codePoint));
        return GrammarNode.Literal(char.ConvertFromUtf32(codePoint));
    }

    public GrammarNode Set(CodePointSet set)
    {
        if (!_json) return set.ToUtf8();
        var alternatives = new List<GrammarNode>();
        var plain = set.Without(NeedsEscape);
        if (!plain.IsEmpty) alternatives.Add(plain.ToUtf8());
        foreach (var (lo, hi) in NeedsEscape.Ranges)
            for (var c = lo; c <= hi; c++)
                if (set.Contains(c)) alternatives.Add(GrammarNode.Literal(JsonEscape(c)));
        return alternatives.Count == 0 ? new ByteNode(default) : GrammarNode.Alt([.. alternatives]);
    }

    /// <summary>A string's characters one after the other.</summary>
    public GrammarNode Text(string text)
    {
        var items = new List<GrammarNode>();
        foreach (var rune in text.EnumerateRunes()) items.Add(Char(rune.Value));
        return GrammarNode.Seq([.. items]);
    }

    private static string JsonEscape(int c) => c switch
    {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\b' => "\\b",
        '\f' => "\\f",
        _ => $"\\u{c:x4}",
    };
}
