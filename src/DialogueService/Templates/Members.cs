using System.Text;

namespace ChatServices.DialogueService.Templates;

/// <summary>
/// The methods and properties reachable with a dot: Python-style string methods (<c>.strip()</c>,
/// <c>.split()</c>, ...) and mapping methods (<c>.items()</c>, <c>.get()</c>, ...), with the reference's
/// semantics, which differ from Python in places templates rely on (for example <c>strip</c>,
/// <c>lstrip</c> and <c>rstrip</c> ignore their argument and remove whitespace).
/// </summary>
internal static class Members
{
    public static Value? OfString(StringValue target, string name, Interpreter interpreter)
    {
        var s = target.Text;
        return name switch
        {
            "upper" => Method(name, _ => new StringValue(JsFormat.ToUpper(s))),
            "lower" => Method(name, _ => new StringValue(JsFormat.ToLower(s))),
            "strip" => Method(name, _ => new StringValue(JsFormat.Trim(s))),
            "title" => Method(name, _ => new StringValue(JsFormat.TitleCase(s))),
            "capitalize" => Method(name, _ => new StringValue(Capitalize(s))),
            "length" => NumberValue.Integer(s.Length),
            "rstrip" => Method(name, _ => new StringValue(JsFormat.TrimEnd(s))),
            "lstrip" => Method(name, _ => new StringValue(JsFormat.TrimStart(s))),
            "startswith" => Method(name, args => BooleanValue.Of(Affix(s, args, "startswith", static (t, p) => t.StartsWith(p, StringComparison.Ordinal)))),
            "endswith" => Method(name, args => BooleanValue.Of(Affix(s, args, "endswith", static (t, p) => t.EndsWith(p, StringComparison.Ordinal)))),
            "split" => Method(name, args => Split(s, args)),
            "replace" => Method(name, args => Replace(s, args, interpreter)),
            _ => null,
        };
    }

    private static FunctionValue Method(string name, Func<List<Value>, Value> body) => new(name, (args, _) => body(args));

    public static string Capitalize(string s) =>
        s.Length == 0 ? s : JsFormat.ToUpper(s[..1]) + s[1..];

    private static bool Affix(string s, List<Value> args, string name, Func<string, string, bool> test)
    {
        if (args.Count == 0) throw new RenderError($"{name}() requires at least one argument");
        switch (args[0])
        {
            case StringValue pattern:
                return test(s, pattern.Text);
            case ArrayValue patterns:
                foreach (var item in patterns.Items)
                {
                    if (item is not StringValue p) throw new RenderError($"{name}() tuple elements must be strings");
                    if (test(s, p.Text)) return true;
                }
                return false;
            default:
                throw new RenderError($"{name}() argument must be a string or tuple of strings");
        }
    }

    private static Value Split(string s, List<Value> args)
    {
        var sep = args.Count > 0 ? args[0] : NullValue.Instance;
        if (sep is not (StringValue or NullValue)) throw new RenderError("sep argument must be a string or null");
        var maxArg = args.Count > 1 ? args[1] : NumberValue.Integer(-1);
        if (maxArg is not NumberValue { IsFloat: false } maxSplitValue) throw new RenderError("maxsplit argument must be a number");
        var maxSplit = maxSplitValue.Number;
        var result = new List<Value>();
        if (sep is NullValue)
        {
            // Runs of whitespace separate; no empty strings at either end.
            var text = JsFormat.TrimStart(s);
            var i = 0;
            while (i < text.Length)
            {
                while (i < text.Length && Lexer.IsJsWhitespace(text[i])) i++;
                if (i >= text.Length) break;
                var start = i;
                while (i < text.Length && !Lexer.IsJsWhitespace(text[i])) i++;
                if (maxSplit != -1 && result.Count >= maxSplit)
                {
                    result.Add(new StringValue(text[start..]));
                    break;
                }
                result.Add(new StringValue(text[start..i]));
            }
        }
        else
        {
            var separator = ((StringValue)sep).Text;
            if (separator.Length == 0) throw new RenderError("empty separator");
            var parts = s.Split(separator);
            if (maxSplit != -1 && parts.Length > maxSplit)
            {
                var keep = (int)Math.Max(maxSplit, 0);
                foreach (var part in parts.AsSpan(0, keep)) result.Add(new StringValue(part));
                result.Add(new StringValue(string.Join(separator, parts, keep, parts.Length - keep)));
            }
            else
            {
                foreach (var part in parts) result.Add(new StringValue(part));
            }
        }
        return new ArrayValue(result);
    }

    public static Value Replace(string s, List<Value> args, Interpreter interpreter)
    {
        if (args.Count < 2) throw new RenderError("replace() requires at least two arguments");
        if (args[0] is not StringValue oldValue || args[1] is not StringValue newValue) throw new RenderError("replace() arguments must be strings");
        Value count = NullValue.Instance;
        if (args.Count > 2)
            count = args[2] is ObjectValue { IsKeywordArguments: true } kw
                ? kw.Entries.TryGetValue("count", out var c) ? c : NullValue.Instance
                : args[2];
        if (count is not (NumberValue { IsFloat: false } or NullValue)) throw new RenderError("replace() count argument must be a number or null");
        var limit = count is NumberValue n ? n.Number : -1;
        return new StringValue(ReplaceText(s, oldValue.Text, newValue.Text, limit, interpreter));
    }

    private static string ReplaceText(string s, string oldValue, string newValue, double count, Interpreter interpreter)
    {
        if (count == 0) return s;
        var remaining = count < 0 ? double.PositiveInfinity : count;
        var sb = new StringBuilder(s.Length);
        if (oldValue.Length == 0)
        {
            // An empty pattern matches at every code point boundary, both ends included.
            for (var i = 0; i <= s.Length; i++)
            {
                if (remaining > 0)
                {
                    sb.Append(newValue);
                    remaining--;
                }
                if (i == s.Length) break;
                sb.Append(s[i]);
                if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) sb.Append(s[++i]);
                interpreter.CheckLength(sb.Length);
            }
            return sb.ToString();
        }
        var at = 0;
        while (remaining > 0)
        {
            var found = s.IndexOf(oldValue, at, StringComparison.Ordinal);
            if (found < 0) break;
            sb.Append(s, at, found - at).Append(newValue);
            interpreter.CheckLength(sb.Length);
            at = found + oldValue.Length;
            remaining--;
        }
        sb.Append(s, at, s.Length - at);
        return sb.ToString();
    }

    public static Value? OfObject(ObjectValue target, string name, Interpreter interpreter) => name switch
    {
        "get" => Method(name, args =>
        {
            var key = args.Count > 0 ? args[0] : UndefinedValue.Instance;
            if (key is not StringValue k) throw new RenderError($"Object key must be a string: got {key.TypeName}");
            return target.Entries.TryGetValue(k.Text, out var v) ? v : args.Count > 1 ? args[1] : NullValue.Instance;
        }),
        "items" => Method(name, _ => target.ItemPairs()),
        "keys" => Method(name, _ => target.KeyList()),
        "values" => Method(name, _ => new ArrayValue([.. target.Entries.Values])),
        "dictsort" => Method(name, args => DictSort(target, args)),
        _ => null,
    };

    private static Value DictSort(ObjectValue target, List<Value> args)
    {
        var kwargs = new OrderedDictionary<string, Value>();
        var positional = new List<Value>();
        foreach (var arg in args)
        {
            if (arg is ObjectValue { IsKeywordArguments: true } kw) kwargs = kw.Entries;
            else positional.Add(arg);
        }
        Value Option(int index, string name, Value fallback) =>
            index < positional.Count ? positional[index] : kwargs.TryGetValue(name, out var v) ? v : fallback;
        if (Option(0, "case_sensitive", BooleanValue.False) is not BooleanValue caseSensitive) throw new RenderError("case_sensitive must be a boolean");
        if (Option(1, "by", new StringValue("key")) is not StringValue by) throw new RenderError("by must be a string");
        if (by.Text is not ("key" or "value")) throw new RenderError("by must be either 'key' or 'value'");
        if (Option(2, "reverse", BooleanValue.False) is not BooleanValue reverse) throw new RenderError("reverse must be a boolean");
        var index = by.Text == "key" ? 0 : 1;
        var pairs = target.ItemPairs().Items;
        var sorted = pairs.OrderBy(p => p, Comparer<Value>.Create((a, b) =>
        {
            var result = Equality.Compare(((ArrayValue)a).Items[index], ((ArrayValue)b).Items[index], caseSensitive.Bool);
            return reverse.Bool ? -result : result;
        })).ToList();
        return new ArrayValue(sorted);
    }
}
