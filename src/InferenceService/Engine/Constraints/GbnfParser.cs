using System.Globalization;

namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>
/// Parses GBNF, llama.cpp's grammar dialect: rules <c>name ::= body</c> (a body runs until the next
/// <c>name ::=</c>, so it may span lines), start rule <c>root</c>; terminals as <c>"literals"</c>, character classes
/// <c>[a-z]</c> / <c>[^"\\]</c> and <c>.</c> (any character); grouping <c>( )</c>, alternation <c>|</c>, repetition
/// <c>* + ? {m} {m,} {m,n}</c>; comments from <c>#</c> to the end of the line. Escapes in literals and classes:
/// <c>\n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH</c>. Rule names are letters, digits, <c>-</c> and <c>_</c>.
/// Errors give the line and column.
/// </summary>
public sealed class GbnfParser
{
    public const string Field = "constraint.grammar.gbnf";

    private const int MaxNesting = 100;
    private readonly string _text;
    private int _pos;
    private int _depth;

    private GbnfParser(string text) => _text = text;

    /// <summary>Adds the rules of <paramref name="gbnf"/> to <paramref name="grammar"/>; a rule already there is an error.</summary>
    public static void AddRules(string gbnf, Grammar grammar)
    {
        var parser = new GbnfParser(gbnf);
        parser.SkipSpace();
        if (parser._pos >= gbnf.Length) throw new ConstraintException(Field, "the grammar has no rules.");
        while (parser._pos < gbnf.Length)
        {
            var at = parser._pos;
            var name = parser.Name() ?? throw parser.Error("expected a rule name");
            parser.SkipSpace();
            if (!parser.Consume("::=")) throw parser.Error("expected '::=' after the rule name");
            if (grammar.Rules.ContainsKey(name)) { parser._pos = at; throw parser.Error($"rule '{name}' is defined twice"); }
            grammar.Rules[name] = parser.Alternatives();
            parser.SkipSpace();
        }
    }

    /// <summary>A name is legal for a rule (also checked for json_schema_rules keys).</summary>
    public static bool IsRuleName(string name) => name.Length > 0 && name.All(IsNameChar);

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';

    private ConstraintException Error(string what)
    {
        var line = 1;
        var column = 1;
        for (var i = 0; i < _pos && i < _text.Length; i++)
        {
            if (_text[i] == '\n') { line++; column = 1; }
            else column++;
        }
        return new ConstraintException(Field, $"{what} at line {line}, column {column}.");
    }

    private void SkipSpace()
    {
        while (_pos < _text.Length)
        {
            var c = _text[_pos];
            if (c == '#') { while (_pos < _text.Length && _text[_pos] != '\n') _pos++; }
            else if (char.IsWhiteSpace(c)) _pos++;
            else break;
        }
    }

    private bool Consume(string s)
    {
        if (string.CompareOrdinal(_text, _pos, s, 0, s.Length) != 0) return false;
        _pos += s.Length;
        return true;
    }

    private string? Name()
    {
        var start = _pos;
        while (_pos < _text.Length && IsNameChar(_text[_pos])) _pos++;
        return _pos > start ? _text[start.._pos] : null;
    }

    /// <summary>Whether the next thing is the start of another rule (<c>name ::=</c>).</summary>
    private bool AtRuleStart()
    {
        var save = _pos;
        var isRule = Name() is not null && SkipAndCheck();
        _pos = save;
        return isRule;

        bool SkipAndCheck()
        {
            SkipSpace();
            return Consume("::=");
        }
    }

    private GrammarNode Alternatives()
    {
        var alternatives = new List<GrammarNode> { Sequence() };
        while (true)
        {
            SkipSpace();
            if (!Consume("|")) break;
            alternatives.Add(Sequence());
        }
        return GrammarNode.Alt([.. alternatives]);
    }

    private GrammarNode Sequence()
    {
        var items = new List<GrammarNode>();
        while (true)
        {
            SkipSpace();
            if (_pos >= _text.Length) break;
            var c = _text[_pos];
            if (c is '|' or ')') break;
            if (IsNameChar(c) && AtRuleStart()) break;
            items.Add(Repetition(Element()));
        }
        return GrammarNode.Seq([.. items]);
    }

    private GrammarNode Element()
    {
        var c = _text[_pos];
        switch (c)
        {
            case '"':
            {
                _pos++;
                var items = new List<GrammarNode>();
                while (true)
                {
                    if (_pos >= _text.Length) throw Error("unterminated string literal");
                    if (_text[_pos] == '"') { _pos++; break; }
                    items.Add(CharacterEncoding.Utf8.Char(Character()));
                }
                return GrammarNode.Seq([.. items]);
            }
            case '[':
                return CharacterEncoding.Utf8.Set(Class());
            case '.':
                _pos++;
                return CodePointSet.All.ToUtf8();
            case '(':
            {
                var open = _pos++;
                if (++_depth > MaxNesting) throw Error($"groups nest deeper than {MaxNesting}");
                var inner = Alternatives();
                _depth--;
                SkipSpace();
                if (!Consume(")")) { _pos = open; throw Error("unclosed '('"); }
                return inner;
            }
            default:
                if (Name() is { } name) return new RuleRef(name);
                throw Error($"unexpected '{c}'");
        }
    }

    private GrammarNode Repetition(GrammarNode item)
    {
        while (_pos < _text.Length)
        {
            var c = _text[_pos];
            if (c == '*') { _pos++; item = GrammarNode.Star(item); }
            else if (c == '+') { _pos++; item = new RepeatNode(item, 1, RepeatNode.Unbounded); }
            else if (c == '?') { _pos++; item = GrammarNode.Optional(item); }
            else if (c == '{') item = Braces(item);
            else break;
        }
        return item;
    }

    private GrammarNode Braces(GrammarNode item)
    {
        var close = _text.IndexOf('}', _pos);
        if (close < 0) throw Error("unclosed '{'");
        var body = _text[(_pos + 1)..close].Replace(" ", "");
        var comma = body.IndexOf(',');
        var ok = int.TryParse(comma < 0 ? body : body[..comma], NumberStyles.None, CultureInfo.InvariantCulture, out var min);
        var max = min;
        if (ok && comma >= 0)
        {
            if (body.Length == comma + 1) max = RepeatNode.Unbounded;
            else ok = int.TryParse(body[(comma + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out max);
        }
        if (!ok || (max != RepeatNode.Unbounded && max < min)) throw Error($"bad repetition '{{{body}}}'");
        if (min > RegexParser.MaxRepeat || max > RegexParser.MaxRepeat) throw Error($"repetition '{{{body}}}' is over the limit of {RegexParser.MaxRepeat}");
        _pos = close + 1;
        return new RepeatNode(item, min, max);
    }

    private CodePointSet Class()
    {
        var open = _pos++;
        var negated = Consume("^");
        var set = new CodePointSet();
        while (true)
        {
            if (_pos >= _text.Length) { _pos = open; throw Error("unclosed '['"); }
            if (_text[_pos] == ']') { _pos++; break; }
            var lo = Character();
            if (_pos + 1 < _text.Length && _text[_pos] == '-' && _text[_pos + 1] != ']')
            {
                _pos++;
                var hi = Character();
                if (hi < lo) throw Error("range out of order");
                set.Add(lo, hi);
            }
            else set.Add(lo, lo);
        }
        return negated ? set.Complement() : set;
    }

    /// <summary>One character of a literal or class, escapes decoded.</summary>
    private int Character()
    {
        if (_text[_pos] != '\\')
        {
            var cp = char.ConvertToUtf32(_text, _pos);
            _pos += cp > 0xFFFF ? 2 : 1;
            return cp;
        }
        var at = _pos++;
        if (_pos >= _text.Length) throw Error("trailing '\\'");
        var c = _text[_pos++];
        switch (c)
        {
            case 'n': return '\n';
            case 'r': return '\r';
            case 't': return '\t';
            case '\\' or '"' or '[' or ']' or '-' or '/' or '\'': return c;
            case 'x': return Hex(2);
            case 'u': return Hex(4);
            case 'U': return Hex(8);
            default:
                _pos = at;
                throw Error($"unknown escape '\\{c}'");
        }
    }

    private int Hex(int digits)
    {
        if (_pos + digits > _text.Length || !int.TryParse(_text.AsSpan(_pos, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var value)
            || value > CodePointSet.MaxCodePoint)
            throw Error($"expected {digits} hex digits");
        _pos += digits;
        return value;
    }
}
