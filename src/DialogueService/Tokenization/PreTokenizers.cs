using System.Text;
using System.Text.Json;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// A section of text (between added tokens) being split into pieces for the model. Pieces are ranges of
/// <see cref="Text"/>; a pre-tokenizer that rewrites characters (Metaspace, ByteLevel's prefix space) replaces
/// <see cref="Text"/> and re-bases the ranges. Instances are reused per thread: no allocation per piece.
/// </summary>
internal sealed class PreTokenizedText
{
    public string Text = "";
    public List<TextRange> Pieces = new();
    /// <summary>Scratch list swapped with <see cref="Pieces"/> by pre-tokenizers that split.</summary>
    public List<TextRange> Next = new();
    public List<TextRange> Matches = new();

    public void Reset(string text, TextRange section)
    {
        Text = text;
        Pieces.Clear();
        if (section.Length > 0) Pieces.Add(section);
    }

    /// <summary>
    /// Drops the reference to the last text, and lists grown by a very long input, so that a per-thread instance
    /// does not keep megabytes alive between requests.
    /// </summary>
    public void Release()
    {
        Text = "";
        const int keep = 1 << 14;
        if (Pieces.Capacity > keep) Pieces = new();
        if (Next.Capacity > keep) Next = new();
        if (Matches.Capacity > keep) Matches = new();
    }

    /// <summary>Makes <see cref="Next"/> the current piece list.</summary>
    public void SwapNext()
    {
        (Pieces, Next) = (Next, Pieces);
        Next.Clear();
    }

    /// <summary>Rewrites every piece through <paramref name="rewrite"/> into a new text, keeping pieces separate.</summary>
    public void Rewrite(Action<StringBuilder, ReadOnlyMemory<char>, int> rewrite)
    {
        var sb = new StringBuilder(Text.Length + Pieces.Count);
        for (var i = 0; i < Pieces.Count; i++)
        {
            var start = sb.Length;
            rewrite(sb, Text.AsMemory(Pieces[i].Start, Pieces[i].Length), i);
            Next.Add(new TextRange(start, sb.Length - start));
        }
        Text = sb.ToString();
        SwapNext();
    }
}

/// <summary>Splits normalized text into the pieces that the model encodes independently (tokenizer.json <c>pre_tokenizer</c>).</summary>
internal abstract class PreTokenizer
{
    /// <param name="sectionIndex">Index of this section among the sections between added tokens (Metaspace "first").</param>
    public abstract void PreTokenize(PreTokenizedText text, int sectionIndex);

    /// <summary>True when the model sees UTF-8 bytes through the byte-level alphabet (a ByteLevel step is present).</summary>
    public virtual bool IsByteLevel => false;

    public static PreTokenizer? FromJson(JsonElement e)
    {
        if (e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined) return null;
        return e.Type() switch
        {
            "Sequence" => new SequencePreTokenizer(e.Array("pretokenizers").Select(FromJson).OfType<PreTokenizer>().ToArray()),
            "Split" => new SplitPreTokenizer(e),
            "ByteLevel" => new ByteLevelPreTokenizer(e.Bool("add_prefix_space", false), e.Bool("use_regex", true)),
            "Metaspace" => new MetaspacePreTokenizer(e),
            "Digits" => new DigitsPreTokenizer(e.Bool("individual_digits", false)),
            var t => throw TokenizerFormatException.Unsupported("pre_tokenizer", t),
        };
    }
}

internal sealed class SequencePreTokenizer(PreTokenizer[] steps) : PreTokenizer
{
    public override bool IsByteLevel => steps.Any(s => s.IsByteLevel);

    public override void PreTokenize(PreTokenizedText text, int sectionIndex)
    {
        foreach (var step in steps) step.PreTokenize(text, sectionIndex);
    }
}

/// <summary>
/// Split: every piece is cut at the pattern's matches. Behaviours: Isolated (matches and the text between them are
/// pieces), Removed (matches are dropped), MergedWithPrevious / MergedWithNext (each match joins the piece before /
/// after it). <c>invert: true</c> keeps only the matches.
/// </summary>
internal sealed class SplitPreTokenizer : PreTokenizer
{
    private enum Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext }

    private readonly SplitPattern _pattern;
    private readonly Behavior _behavior;
    private readonly bool _invert;

    public SplitPreTokenizer(JsonElement e)
    {
        if (!e.Has("pattern", out var pattern)) throw new TokenizerFormatException("Split pre_tokenizer without a pattern.");
        _pattern = pattern.String("Regex") is { } regex ? SplitPattern.FromRegex(regex)
            : pattern.String("String") is { } literal ? new LiteralPattern(literal)
            : throw new TokenizerFormatException("Split pre_tokenizer pattern must be {\"Regex\": ...} or {\"String\": ...}.");
        _invert = e.Bool("invert", false);
        var behavior = e.String("behavior") ?? "Isolated";
        _behavior = behavior.ToLowerInvariant() switch
        {
            "isolated" => Behavior.Isolated,
            "removed" => Behavior.Removed,
            "mergedwithprevious" => Behavior.MergedWithPrevious,
            "mergedwithnext" => Behavior.MergedWithNext,
            _ => throw TokenizerFormatException.Unsupported("Split behavior", behavior),
        };
    }

    public override void PreTokenize(PreTokenizedText text, int sectionIndex)
    {
        foreach (var piece in text.Pieces)
        {
            text.Matches.Clear();
            _pattern.FindMatches(text.Text, piece, text.Matches);
            if (_invert)
            {
                text.Next.AddRange(text.Matches);
                continue;
            }
            var pos = piece.Start;
            var pendingStart = -1; // MergedWithNext: start of a match waiting for the text after it
            foreach (var m in text.Matches)
            {
                var gap = new TextRange(pos, m.Start - pos);
                switch (_behavior)
                {
                    case Behavior.Isolated:
                        AddNonEmpty(text.Next, gap);
                        text.Next.Add(m);
                        break;
                    case Behavior.Removed:
                        AddNonEmpty(text.Next, gap);
                        break;
                    case Behavior.MergedWithPrevious:
                        text.Next.Add(new TextRange(gap.Start, m.End - gap.Start));
                        break;
                    case Behavior.MergedWithNext:
                        if (pendingStart >= 0) AddNonEmpty(text.Next, new TextRange(pendingStart, m.Start - pendingStart));
                        else AddNonEmpty(text.Next, gap);
                        pendingStart = m.Start;
                        break;
                }
                pos = m.End;
            }
            var tailStart = _behavior == Behavior.MergedWithNext && pendingStart >= 0 ? pendingStart : pos;
            AddNonEmpty(text.Next, new TextRange(tailStart, piece.End - tailStart));
        }
        text.SwapNext();
    }

    private static void AddNonEmpty(List<TextRange> list, TextRange r)
    {
        if (r.Length > 0) list.Add(r);
    }
}

/// <summary>
/// ByteLevel: optionally prefixes each piece with a space and splits it with the GPT-2 pattern; marks the pipeline
/// as byte-level, so the model encodes each piece's UTF-8 bytes through the byte alphabet.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    public override bool IsByteLevel => true;

    public override void PreTokenize(PreTokenizedText text, int sectionIndex)
    {
        if (addPrefixSpace)
            text.Rewrite((sb, piece, _) =>
            {
                if (!piece.Span.StartsWith(' ')) sb.Append(' ');
                sb.Append(piece.Span);
            });
        if (!useRegex) return;
        foreach (var piece in text.Pieces) SplitPattern.ByteLevelBuiltIn.FindMatches(text.Text, piece, text.Next);
        text.SwapNext();
    }
}

/// <summary>
/// Metaspace (SentencePiece): spaces become the replacement character (▁), and a ▁ is prepended per
/// <c>prepend_scheme</c> (always / first section only / never). With <c>split: true</c> pieces are cut before each ▁.
/// </summary>
internal sealed class MetaspacePreTokenizer : PreTokenizer
{
    private readonly char _replacement;
    private readonly string _scheme;
    private readonly bool _split;

    public MetaspacePreTokenizer(JsonElement e)
    {
        var replacement = e.String("replacement") ?? "\u2581";
        if (replacement.Length != 1) throw new TokenizerFormatException($"Metaspace replacement must be one character, got '{replacement}'.");
        _replacement = replacement[0];
        _scheme = e.String("prepend_scheme") ?? (e.Bool("add_prefix_space", true) ? "always" : "never");
        if (_scheme is not ("always" or "first" or "never")) throw TokenizerFormatException.Unsupported("Metaspace prepend_scheme", _scheme);
        _split = e.Bool("split", false);
    }

    public override void PreTokenize(PreTokenizedText text, int sectionIndex)
    {
        var prepend = _scheme == "always" || (_scheme == "first" && sectionIndex == 0);
        text.Rewrite((sb, piece, _) =>
        {
            if (prepend && !piece.Span.StartsWith(_replacement) && !piece.Span.StartsWith(' ')) sb.Append(_replacement);
            foreach (var c in piece.Span) sb.Append(c == ' ' ? _replacement : c);
        });
        if (!_split) return;
        foreach (var piece in text.Pieces)
        {
            var start = piece.Start;
            for (var i = piece.Start + 1; i < piece.End; i++)
            {
                if (text.Text[i] != _replacement) continue;
                text.Next.Add(new TextRange(start, i - start));
                start = i;
            }
            text.Next.Add(new TextRange(start, piece.End - start));
        }
        text.SwapNext();
    }
}

/// <summary>Digits: ASCII digit runs (or single digits) become pieces of their own.</summary>
internal sealed class DigitsPreTokenizer(bool individualDigits) : PreTokenizer
{
    public override void PreTokenize(PreTokenizedText text, int sectionIndex)
    {
        foreach (var piece in text.Pieces)
        {
            var start = piece.Start;
            for (var i = piece.Start; i < piece.End; i++)
            {
                var digit = char.IsAsciiDigit(text.Text[i]);
                var boundary = i > start && (digit != char.IsAsciiDigit(text.Text[i - 1]) || (digit && individualDigits));
                if (!boundary) continue;
                text.Next.Add(new TextRange(start, i - start));
                start = i;
            }
            if (piece.End > start) text.Next.Add(new TextRange(start, piece.End - start));
        }
        text.SwapNext();
    }
}
