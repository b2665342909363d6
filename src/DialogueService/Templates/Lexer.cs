using System.Text;
using System.Text.RegularExpressions;

namespace ChatServices.DialogueService.Templates;

internal enum TokenKind
{
    Text,
    NumericLiteral,
    StringLiteral,
    Identifier,
    Equals,
    OpenParen,
    CloseParen,
    OpenStatement,
    CloseStatement,
    OpenExpression,
    CloseExpression,
    OpenSquareBracket,
    CloseSquareBracket,
    OpenCurlyBracket,
    CloseCurlyBracket,
    Comma,
    Dot,
    Colon,
    Pipe,
    AdditiveBinaryOperator,
    MultiplicativeBinaryOperator,
    ExponentiationBinaryOperator,
    ComparisonBinaryOperator,
    UnaryOperator,
    Comment,
    EndOfInput,
}

/// <summary>A token and the offset in the original template source it came from.</summary>
internal sealed class Token(string value, TokenKind kind, int offset)
{
    public string Value { get; set; } = value;
    public TokenKind Kind { get; } = kind;
    public int Offset { get; } = offset;
}

/// <summary>
/// Turns template source into tokens exactly as @huggingface/jinja does (trim_blocks and lstrip_blocks
/// on, the transformers <c>{% generation %}</c> tag removed), so that whitespace in the rendered prompt
/// matches the reference byte for byte. The preprocessing rewrites the text; every character keeps the
/// offset it had in the original source so that errors point at the line the author wrote.
/// </summary>
internal static class Lexer
{
    // JavaScript's \s: what the reference's regular expressions and String.prototype.trim treat as space.
    internal const string JsWhitespaceClass = @"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff";

    private static readonly Regex LstripBlocks =
        new(@"(?<=^|[\n\r\u2028\u2029])[ \t]*(?=\{[#%-])", RegexOptions.CultureInvariant);

    private static readonly Regex TrimBlocks = new(@"(?<=[#%-]\})\n", RegexOptions.CultureInvariant);

    private static readonly Regex GenerationTag = new(
        $@"(?<before>[{JsWhitespaceClass}]*)\{{%(?<l>-?)[{JsWhitespaceClass}]*(?:end)?generation[{JsWhitespaceClass}]*(?<r>-?)%\}}(?<after>[{JsWhitespaceClass}]*)",
        RegexOptions.CultureInvariant);

    private static readonly (string Sequence, TokenKind Kind)[] OrderedMappingTable =
    [
        ("{%", TokenKind.OpenStatement),
        ("%}", TokenKind.CloseStatement),
        ("{{", TokenKind.OpenExpression),
        ("}}", TokenKind.CloseExpression),
        ("(", TokenKind.OpenParen),
        (")", TokenKind.CloseParen),
        ("{", TokenKind.OpenCurlyBracket),
        ("}", TokenKind.CloseCurlyBracket),
        ("[", TokenKind.OpenSquareBracket),
        ("]", TokenKind.CloseSquareBracket),
        (",", TokenKind.Comma),
        (".", TokenKind.Dot),
        (":", TokenKind.Colon),
        ("|", TokenKind.Pipe),
        ("<=", TokenKind.ComparisonBinaryOperator),
        (">=", TokenKind.ComparisonBinaryOperator),
        ("==", TokenKind.ComparisonBinaryOperator),
        ("!=", TokenKind.ComparisonBinaryOperator),
        ("<", TokenKind.ComparisonBinaryOperator),
        (">", TokenKind.ComparisonBinaryOperator),
        ("+", TokenKind.AdditiveBinaryOperator),
        ("-", TokenKind.AdditiveBinaryOperator),
        ("~", TokenKind.AdditiveBinaryOperator),
        ("**", TokenKind.ExponentiationBinaryOperator),
        ("*", TokenKind.MultiplicativeBinaryOperator),
        ("//", TokenKind.MultiplicativeBinaryOperator),
        ("/", TokenKind.MultiplicativeBinaryOperator),
        ("%", TokenKind.MultiplicativeBinaryOperator),
        ("=", TokenKind.Equals),
    ];

    internal static bool IsJsWhitespace(char c) => c switch
    {
        '\t' or '\n' or '\v' or '\f' or '\r' or ' ' or '\u00a0' or '\u1680' or '\u2028' or '\u2029' or '\u202f'
            or '\u205f' or '\u3000' or '\ufeff' => true,
        >= '\u2000' and <= '\u200a' => true,
        _ => false,
    };

    internal static bool IsWordChar(char c) => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_';

    private static bool IsDigit(char c) => c is >= '0' and <= '9';

    /// <summary>The preprocessed text and, for each of its characters, the offset in the original source.</summary>
    internal readonly record struct MappedText(string Text, int[] Origin)
    {
        public int OriginAt(int index) =>
            Origin.Length == 0 ? 0 : index < Origin.Length ? Origin[index] : Origin[^1] + 1;

        /// <summary>Applies a regular-expression replacement whose result keeps only some groups of each match.</summary>
        public MappedText Replace(Regex regex, Func<Match, IEnumerable<Group>> keep)
        {
            var source = Text;
            var sourceOrigin = Origin;
            var text = new StringBuilder(source.Length);
            var origin = new List<int>(source.Length);
            var last = 0;
            foreach (Match match in regex.Matches(source))
            {
                Copy(last, match.Index - last);
                foreach (var group in keep(match)) Copy(group.Index, group.Length);
                last = match.Index + match.Length;
            }
            Copy(last, source.Length - last);
            return new MappedText(text.ToString(), origin.ToArray());

            void Copy(int start, int length)
            {
                text.Append(source, start, length);
                for (var i = 0; i < length; i++) origin.Add(sourceOrigin[start + i]);
            }
        }
    }

    internal static MappedText Preprocess(string template)
    {
        var length = template.EndsWith('\n') ? template.Length - 1 : template.Length;
        var identity = new int[length];
        for (var i = 0; i < length; i++) identity[i] = i;
        var mapped = new MappedText(template[..length], identity);
        mapped = mapped.Replace(LstripBlocks, static _ => []);
        mapped = mapped.Replace(TrimBlocks, static _ => []);
        return mapped.Replace(GenerationTag, static m =>
        {
            var keep = new List<Group>(2);
            if (m.Groups["l"].Length == 0) keep.Add(m.Groups["before"]);
            if (m.Groups["r"].Length == 0) keep.Add(m.Groups["after"]);
            return keep;
        });
    }

    public static List<Token> Tokenize(string source, out MappedText mapped)
    {
        mapped = Preprocess(source);
        var map = mapped;
        var src = mapped.Text;
        var tokens = new List<Token>();
        var cursor = 0;
        var curlyBracketDepth = 0;

        TemplateException Error(string message, int at) => SourcePosition.Error(source, map.OriginAt(at), message);
        char At(int i) => i < src.Length ? src[i] : '\0';
        bool StartsWithAt(int i, string s) => string.CompareOrdinal(src, i, s, 0, s.Length) == 0 && i + s.Length <= src.Length;
        void Push(string value, TokenKind kind, int at) => tokens.Add(new Token(value, kind, map.OriginAt(at)));

        string ConsumeWhile(Func<char, bool> predicate)
        {
            var sb = new StringBuilder();
            while (cursor < src.Length && predicate(src[cursor]))
            {
                if (src[cursor] == '\\')
                {
                    ++cursor;
                    if (cursor >= src.Length) throw Error("Unexpected end of input", cursor);
                    var escaped = src[cursor++];
                    if (escaped is 'x' or 'u')
                    {
                        var len = escaped == 'x' ? 2 : 4;
                        var hex = cursor + len <= src.Length ? src.Substring(cursor, len) : src[cursor..];
                        if (hex.Length != len || !hex.All(Uri.IsHexDigit))
                            throw Error($"Invalid hexadecimal escape sequence: \\{escaped}{hex}", cursor);
                        sb.Append((char)Convert.ToInt32(hex, 16));
                        cursor += len;
                        continue;
                    }
                    sb.Append(escaped switch
                    {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\b',
                        'f' => '\f',
                        'v' => '\v',
                        '\'' => '\'',
                        '"' => '"',
                        '\\' => '\\',
                        _ => throw Error($"Unexpected escaped character: {escaped}", cursor - 1),
                    });
                    continue;
                }
                sb.Append(src[cursor++]);
                if (cursor >= src.Length) throw Error("Unexpected end of input", cursor);
            }
            return sb.ToString();
        }

        void StripTrailingWhitespace()
        {
            if (tokens.Count > 0 && tokens[^1].Kind == TokenKind.Text)
            {
                var last = tokens[^1];
                var end = last.Value.Length;
                while (end > 0 && IsJsWhitespace(last.Value[end - 1])) end--;
                last.Value = last.Value[..end];
                if (last.Value.Length == 0) tokens.RemoveAt(tokens.Count - 1);
            }
        }

        void SkipLeadingWhitespace()
        {
            while (cursor < src.Length && IsJsWhitespace(src[cursor])) ++cursor;
        }

        while (cursor < src.Length)
        {
            var lastKind = tokens.Count == 0 ? (TokenKind?)null : tokens[^1].Kind;
            if (lastKind is null or TokenKind.CloseStatement or TokenKind.CloseExpression or TokenKind.Comment)
            {
                var start = cursor;
                while (cursor < src.Length && !(src[cursor] == '{' && At(cursor + 1) is '%' or '{' or '#')) cursor++;
                if (cursor > start)
                {
                    Push(src[start..cursor], TokenKind.Text, start);
                    continue;
                }
            }

            if (src[cursor] == '{' && At(cursor + 1) == '#')
            {
                var commentStart = cursor;
                cursor += 2;
                var stripBefore = At(cursor) == '-';
                if (stripBefore) ++cursor;
                var bodyStart = cursor;
                while (At(cursor) != '#' || At(cursor + 1) != '}')
                {
                    if (cursor + 2 >= src.Length) throw Error("Missing end of comment tag", commentStart);
                    cursor++;
                }
                var comment = src[bodyStart..cursor];
                var stripAfter = comment.EndsWith('-');
                if (stripAfter) comment = comment[..^1];
                if (stripBefore) StripTrailingWhitespace();
                Push(comment, TokenKind.Comment, commentStart);
                cursor += 2;
                if (stripAfter) SkipLeadingWhitespace();
                continue;
            }

            if (StartsWithAt(cursor, "{%-"))
            {
                StripTrailingWhitespace();
                Push("{%", TokenKind.OpenStatement, cursor);
                cursor += 3;
                continue;
            }
            if (StartsWithAt(cursor, "{{-"))
            {
                StripTrailingWhitespace();
                Push("{{", TokenKind.OpenExpression, cursor);
                curlyBracketDepth = 0;
                cursor += 3;
                continue;
            }

            SkipLeadingWhitespace();
            if (cursor >= src.Length) break;

            if (StartsWithAt(cursor, "-%}"))
            {
                Push("%}", TokenKind.CloseStatement, cursor);
                cursor += 3;
                SkipLeadingWhitespace();
                continue;
            }
            if (StartsWithAt(cursor, "-}}"))
            {
                Push("}}", TokenKind.CloseExpression, cursor);
                cursor += 3;
                SkipLeadingWhitespace();
                continue;
            }

            var c = src[cursor];
            if (c is '-' or '+')
            {
                var previous = tokens.Count == 0 ? (TokenKind?)null : tokens[^1].Kind;
                if (previous is null or TokenKind.Text) throw Error($"Unexpected character: {c}", cursor);
                if (previous is not (TokenKind.Identifier or TokenKind.NumericLiteral or TokenKind.StringLiteral
                    or TokenKind.CloseParen or TokenKind.CloseSquareBracket))
                {
                    var start = cursor;
                    ++cursor;
                    var num = ConsumeWhile(IsDigit);
                    if (num.Length > 0 && At(cursor) == '.' && IsDigit(At(cursor + 1)))
                    {
                        ++cursor;
                        num = num + "." + ConsumeWhile(IsDigit);
                    }
                    Push(c + num, num.Length > 0 ? TokenKind.NumericLiteral : TokenKind.UnaryOperator, start);
                    continue;
                }
            }

            var matched = false;
            foreach (var (sequence, kind) in OrderedMappingTable)
            {
                if (sequence == "}}" && curlyBracketDepth > 0) continue;
                if (!StartsWithAt(cursor, sequence)) continue;
                Push(sequence, kind, cursor);
                if (kind == TokenKind.OpenExpression) curlyBracketDepth = 0;
                else if (kind == TokenKind.OpenCurlyBracket) ++curlyBracketDepth;
                else if (kind == TokenKind.CloseCurlyBracket) --curlyBracketDepth;
                cursor += sequence.Length;
                matched = true;
                break;
            }
            if (matched) continue;

            if (c is '\'' or '"')
            {
                var start = cursor;
                ++cursor;
                var quote = c;
                var str = ConsumeWhile(ch => ch != quote);
                if (cursor >= src.Length) throw Error("Unterminated string literal", start);
                Push(str, TokenKind.StringLiteral, start);
                ++cursor;
                continue;
            }

            if (IsDigit(c))
            {
                var start = cursor;
                var num = ConsumeWhile(IsDigit);
                if ((tokens.Count == 0 || tokens[^1].Kind != TokenKind.Dot) && At(cursor) == '.' && IsDigit(At(cursor + 1)))
                {
                    ++cursor;
                    num = num + "." + ConsumeWhile(IsDigit);
                }
                Push(num, TokenKind.NumericLiteral, start);
                continue;
            }

            if (IsWordChar(c))
            {
                var start = cursor;
                Push(ConsumeWhile(IsWordChar), TokenKind.Identifier, start);
                continue;
            }

            throw Error($"Unexpected character: {c}", cursor);
        }

        return tokens;
    }
}

/// <summary>Maps an offset in the template source to a 1-based line and column.</summary>
internal static class SourcePosition
{
    public static (int Line, int Column) Of(string source, int offset)
    {
        offset = Math.Clamp(offset, 0, source.Length);
        var line = 1;
        var lineStart = 0;
        for (var i = 0; i < offset; i++)
        {
            if (source[i] == '\n')
            {
                line++;
                lineStart = i + 1;
            }
        }
        return (line, offset - lineStart + 1);
    }

    public static TemplateException Error(string source, int offset, string message)
    {
        var (line, column) = Of(source, offset);
        return new TemplateException(message, line, column);
    }
}
