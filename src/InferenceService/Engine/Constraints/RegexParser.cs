using System.Globalization;

namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>
/// Parses the regular expression subset of inference.proto into a grammar node: literals and escapes, <c>.</c>
/// (any character but a newline), classes <c>[...]</c> with ranges and negation, <c>\d \w \s</c> and their
/// negations, groups <c>(...)</c>, <c>(?:...)</c> and named groups, alternation, and the quantifiers
/// <c>* + ? {m} {m,} {m,n}</c> (lazy forms match the same language). The match is anchored at both ends; a leading
/// <c>^</c> and a trailing <c>$</c> are accepted and change nothing. Backreferences, look-around and word boundaries
/// are refused with their position.
/// </summary>
public sealed class RegexParser
{
    public const int MaxRepeat = 1000;

    private static readonly CodePointSet Digits = CodePointSet.Of(('0', '9'));
    private static readonly CodePointSet Word = CodePointSet.Of(('0', '9'), ('A', 'Z'), ('a', 'z'), ('_', '_'));
    private static readonly CodePointSet Space = CodePointSet.Of(('\t', '\r'), (' ', ' '), (0xA0, 0xA0), (0xFEFF, 0xFEFF), (0x2028, 0x2029));
    private static readonly CodePointSet NotNewline = CodePointSet.Of(('\n', '\n'), ('\r', '\r'), (0x2028, 0x2029)).Complement();

    private readonly string _pattern;
    private readonly string _field;
    private readonly CharacterEncoding _encoding;
    private const int MaxNesting = 100;
    private int _pos;
    private int _depth;

    private RegexParser(string pattern, string field, CharacterEncoding encoding)
    {
        _pattern = pattern;
        _field = field;
        _encoding = encoding;
    }

    /// <summary>The language of <paramref name="pattern"/>, matched in full; errors name <paramref name="field"/> and the position.</summary>
    public static GrammarNode Parse(string pattern, string field, CharacterEncoding encoding)
    {
        var parser = new RegexParser(pattern, field, encoding);
        if (parser.Peek('^')) parser._pos++;
        var node = parser.Alternation();
        if (parser._pos < pattern.Length) throw parser.Error($"unexpected '{pattern[parser._pos]}'");
        return node;
    }

    private ConstraintException Error(string what) => new(_field, $"{what} at position {_pos}.");

    private bool Peek(char c) => _pos < _pattern.Length && _pattern[_pos] == c;

    private bool AtEndAnchor() => Peek('$') && _pos == _pattern.Length - 1;

    private GrammarNode Alternation()
    {
        var alternatives = new List<GrammarNode> { Concatenation() };
        while (Peek('|'))
        {
            _pos++;
            alternatives.Add(Concatenation());
        }
        return GrammarNode.Alt([.. alternatives]);
    }

    private GrammarNode Concatenation()
    {
        var items = new List<GrammarNode>();
        while (_pos < _pattern.Length && !Peek('|') && !Peek(')'))
        {
            if (AtEndAnchor()) { _pos++; break; }
            items.Add(Quantified(Atom()));
        }
        return GrammarNode.Seq([.. items]);
    }

    private GrammarNode Quantified(GrammarNode atom)
    {
        while (_pos < _pattern.Length)
        {
            int min, max;
            var c = _pattern[_pos];
            if (c == '*') { min = 0; max = RepeatNode.Unbounded; _pos++; }
            else if (c == '+') { min = 1; max = RepeatNode.Unbounded; _pos++; }
            else if (c == '?') { min = 0; max = 1; _pos++; }
            else if (c == '{' && TryBraces(out min, out max)) { }
            else break;
            if (Peek('?')) _pos++; // lazy: the same language
            else if (Peek('+')) throw Error("possessive quantifiers are not supported");
            atom = new RepeatNode(atom, min, max);
        }
        return atom;
    }

    /// <summary>{m}, {m,} or {m,n}; anything else leaves the '{' to be read as a literal.</summary>
    private bool TryBraces(out int min, out int max)
    {
        min = max = 0;
        var close = _pattern.IndexOf('}', _pos);
        if (close < 0) return false;
        var body = _pattern[(_pos + 1)..close];
        var comma = body.IndexOf(',');
        var first = comma < 0 ? body : body[..comma];
        if (!int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out min)) return false;
        if (comma < 0) max = min;
        else if (body.Length == comma + 1) max = RepeatNode.Unbounded;
        else if (!int.TryParse(body[(comma + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out max)) return false;
        if (max != RepeatNode.Unbounded && max < min) throw Error($"repetition {{{body}}} has its maximum below its minimum");
        if (min > MaxRepeat || max > MaxRepeat) throw Error($"repetition {{{body}}} is over the limit of {MaxRepeat}");
        _pos = close + 1;
        return true;
    }

    private GrammarNode Atom()
    {
        var c = _pattern[_pos];
        switch (c)
        {
            case '(':
                return Group();
            case '[':
                return _encoding.Set(Class());
            case '.':
                _pos++;
                return _encoding.Set(NotNewline);
            case '\\':
                return Escape(inClass: false) switch
                {
                    (int cp, null) => _encoding.Char(cp),
                    (_, { } set) => _encoding.Set(set),
                };
            case '^':
                throw Error("'^' is only supported at the start");
            case '$':
                throw Error("'$' is only supported at the end");
            case '*' or '+' or '?':
                throw Error($"quantifier '{c}' follows nothing");
            default:
                return _encoding.Char(NextCodePoint());
        }
    }

    private GrammarNode Group()
    {
        var open = _pos++;
        if (++_depth > MaxNesting) throw Error($"groups nest deeper than {MaxNesting}");
        if (Peek('?'))
        {
            var rest = _pattern.AsSpan(_pos);
            if (rest.StartsWith("?:")) _pos += 2;
            else if (rest.StartsWith("?<") && !rest.StartsWith("?<=") && !rest.StartsWith("?<!") || rest.StartsWith("?P<"))
            {
                var close = _pattern.IndexOf('>', _pos);
                if (close < 0) throw Error("unterminated group name");
                _pos = close + 1;
            }
            else
            {
                _pos = open;
                throw Error("look-around and inline flags are not supported");
            }
        }
        var inner = Alternation();
        if (!Peek(')')) { _pos = open; throw Error("unclosed '('"); }
        _pos++;
        _depth--;
        return inner;
    }

    private CodePointSet Class()
    {
        var open = _pos++;
        var negated = Peek('^');
        if (negated) _pos++;
        var set = new CodePointSet();
        var first = true;
        while (true)
        {
            if (_pos >= _pattern.Length) { _pos = open; throw Error("unclosed '['"); }
            if (Peek(']') && !first) { _pos++; break; }
            first = false;
            var (lo, loSet) = ClassItem();
            if (loSet is not null) { set.AddAll(loSet); continue; }
            if (Peek('-') && _pos + 1 < _pattern.Length && _pattern[_pos + 1] != ']')
            {
                _pos++;
                var (hi, hiSet) = ClassItem();
                if (hiSet is not null) throw Error("a class escape cannot end a range");
                if (hi < lo) throw Error("range out of order");
                set.Add(lo, hi);
            }
            else set.Add(lo, lo);
        }
        return negated ? set.Complement() : set;
    }

    private (int CodePoint, CodePointSet? Set) ClassItem() => Peek('\\') ? Escape(inClass: true) : (NextCodePoint(), null);

    private int NextCodePoint()
    {
        var cp = char.ConvertToUtf32(_pattern, _pos);
        _pos += cp > 0xFFFF ? 2 : 1;
        return cp;
    }

    /// <summary>An escape: one code point, or a class (\d \w \s and negations).</summary>
    private (int CodePoint, CodePointSet? Set) Escape(bool inClass)
    {
        var at = _pos++;
        if (_pos >= _pattern.Length) throw Error("trailing '\\'");
        var c = _pattern[_pos++];
        switch (c)
        {
            case 'd': return (0, Digits);
            case 'D': return (0, Digits.Complement());
            case 'w': return (0, Word);
            case 'W': return (0, Word.Complement());
            case 's': return (0, Space);
            case 'S': return (0, Space.Complement());
            case 'n': return ('\n', null);
            case 'r': return ('\r', null);
            case 't': return ('\t', null);
            case 'f': return ('\f', null);
            case 'v': return ('\v', null);
            case '0': return (0, null);
            case 'b' when inClass: return ('\b', null);
            case 'x': return (Hex(2), null);
            case 'u' when Peek('{'):
            {
                var close = _pattern.IndexOf('}', _pos);
                if (close < 0 || !int.TryParse(_pattern.AsSpan(_pos + 1, close - _pos - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var cp) || cp > CodePointSet.MaxCodePoint)
                    throw Error("bad \\u{...} escape");
                _pos = close + 1;
                return (cp, null);
            }
            case 'u': return (Hex(4), null);
            case >= '1' and <= '9' or 'k':
                _pos = at;
                throw Error("backreferences are not supported");
            case 'b' or 'B':
                _pos = at;
                throw Error($"'\\{c}' (word boundary) is not supported");
            case 'p' or 'P':
                _pos = at;
                throw Error($"Unicode property escapes ('\\{c}') are not supported");
            default:
                if (char.IsAsciiLetterOrDigit(c)) { _pos = at; throw Error($"unknown escape '\\{c}'"); }
                _pos--;
                return (NextCodePoint(), null);
        }
    }

    private int Hex(int digits)
    {
        if (_pos + digits > _pattern.Length || !int.TryParse(_pattern.AsSpan(_pos, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var value))
            throw Error($"expected {digits} hex digits");
        _pos += digits;
        return value;
    }
}
