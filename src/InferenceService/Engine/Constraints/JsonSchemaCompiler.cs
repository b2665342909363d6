using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>
/// Compiles a JSON Schema (the subset documented in inference.proto) into grammar rules for the compact JSON text of
/// a valid instance: no whitespace but ", " and ": " as separators, object properties in the schema's order
/// (required ones always, optional ones possibly), strings with valid escapes only, numbers in plain decimal.
/// Anything outside the subset is refused naming the keyword; the language generated is a subset of the valid
/// instances (it never produces an invalid one). Limits that keep a sampled output finite: integers and the integer
/// part of numbers have at most <see cref="MaxDigits"/> digits, fractions at most <see cref="MaxFractionDigits"/>.
/// </summary>
public sealed class JsonSchemaCompiler
{
    public const int MaxDigits = 18;
    public const int MaxFractionDigits = 15;

    private static readonly HashSet<string> Annotations = new(StringComparer.Ordinal)
    {
        "title", "description", "$schema", "$id", "$comment", "$anchor", "default", "examples", "deprecated", "readOnly", "writeOnly",
        "$defs", "definitions",
    };

    private static readonly HashSet<string> Supported = new(StringComparer.Ordinal)
    {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems", "enum", "const",
        "anyOf", "oneOf", "allOf", "$ref", "minLength", "maxLength", "pattern", "format", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum",
    };

    private static readonly string[] StringKeywords = ["minLength", "maxLength", "pattern", "format"];
    private static readonly string[] NumberKeywords = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"];
    private static readonly string[] ObjectKeywords = ["properties", "required", "additionalProperties"];
    private static readonly string[] ArrayKeywords = ["items", "prefixItems", "minItems", "maxItems"];

    private static readonly JsonSerializerOptions CanonicalStrings = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly Grammar _grammar;
    private readonly string _field;
    private readonly JsonElement _root;
    private readonly string _rootRule;
    private readonly Dictionary<string, RuleRef> _refs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RuleRef> _shared = new(StringComparer.Ordinal);

    private JsonSchemaCompiler(Grammar grammar, string field, JsonElement root, string rootRule)
    {
        _grammar = grammar;
        _field = field;
        _root = root;
        _rootRule = rootRule;
    }

    /// <summary>A grammar whose root is the schema's instances.</summary>
    public static Grammar Compile(string schemaJson, string field)
    {
        var grammar = new Grammar();
        AddRule(grammar, "root", schemaJson, field);
        return grammar;
    }

    /// <summary>Adds rule <paramref name="name"/> (and helpers) for the instances of the schema to <paramref name="grammar"/>.</summary>
    public static void AddRule(Grammar grammar, string name, string schemaJson, string field)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(schemaJson); }
        catch (JsonException e)
        {
            throw new ConstraintException(field, $"not valid JSON: {e.Message}");
        }
        using (doc)
        {
            var compiler = new JsonSchemaCompiler(grammar, field, doc.RootElement.Clone(), name);
            grammar.Rules[name] = GrammarNode.Empty; // reserved: "#" refers to it
            try
            {
                grammar.Rules[name] = compiler.Schema(compiler._root, "#");
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                // A keyword whose value has the wrong JSON type (e.g. "required": "a" instead of ["a"]).
                throw new ConstraintException(field, $"a keyword has a value of the wrong type: {e.Message}");
            }
        }
    }

    /// <summary>Any JSON object (json_object constraints), compact like the schema output.</summary>
    public static Grammar AnyObject()
    {
        var grammar = new Grammar();
        var compiler = new JsonSchemaCompiler(grammar, "constraint.json_object", default, "root");
        grammar.Rules["root"] = compiler.Shared("object", c => c.ObjectOf(c.AnyValue()));
        return grammar;
    }

    private ConstraintException Unsupported(string keyword, string path, string? detail = null) =>
        new(_field, $"keyword '{keyword}' is not supported{detail}{(path == "#" ? "" : $" (at {path})")}.");

    private ConstraintException Invalid(string message, string path) =>
        new(_field, $"{message}{(path == "#" ? "" : $" (at {path})")}.");

    private GrammarNode Schema(JsonElement s, string path)
    {
        if (s.ValueKind == JsonValueKind.True) return AnyValue();
        if (s.ValueKind != JsonValueKind.Object) throw Invalid("a schema must be an object or true", path);
        var keys = new List<string>();
        foreach (var p in s.EnumerateObject())
        {
            if (Annotations.Contains(p.Name)) continue;
            if (!Supported.Contains(p.Name)) throw Unsupported(p.Name, path);
            keys.Add(p.Name);
        }

        if (s.TryGetProperty("$ref", out var reference))
        {
            if (keys.Count > 1) throw Unsupported(keys.First(k => k != "$ref"), path, " beside '$ref'");
            return Ref(reference.GetString() ?? "", path);
        }
        if (s.TryGetProperty("const", out var constant)) return GrammarNode.Literal(Canonical(constant));
        if (s.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0) throw Invalid("'enum' must be a non-empty array", path);
            return GrammarNode.Alt([.. values.EnumerateArray().Select(v => GrammarNode.Literal(Canonical(v)))]);
        }
        foreach (var combinator in new[] { "anyOf", "oneOf", "allOf" })
        {
            if (!s.TryGetProperty(combinator, out var list)) continue;
            if (keys.Count > 1) throw Unsupported(combinator, path, " beside other keywords");
            if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0) throw Invalid($"'{combinator}' must be a non-empty array", path);
            if (combinator == "allOf" && list.GetArrayLength() > 1) throw Unsupported("allOf", path, " with more than one schema");
            return GrammarNode.Alt([.. list.EnumerateArray().Select((x, i) => Schema(x, $"{path}/{combinator}/{i}"))]);
        }

        var types = Types(s, keys, path);
        if (types is null) return AnyValue();
        return GrammarNode.Alt([.. types.Select(t => Typed(s, t, path))]);
    }

    /// <summary>The declared types, or those the keywords imply; null for any value.</summary>
    private List<string>? Types(JsonElement s, List<string> keys, string path)
    {
        if (s.TryGetProperty("type", out var type))
        {
            var list = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()).ToList() : [type.GetString()];
            foreach (var t in list)
                if (t is not ("string" or "number" or "integer" or "boolean" or "null" or "object" or "array"))
                    throw Invalid($"type '{t}' is not a JSON Schema type", path);
            return list!;
        }
        if (keys.Any(ObjectKeywords.Contains)) return ["object"];
        if (keys.Any(ArrayKeywords.Contains)) return ["array"];
        if (keys.Any(StringKeywords.Contains)) return ["string"];
        if (keys.Any(NumberKeywords.Contains)) return ["number"];
        return null;
    }

    private GrammarNode Typed(JsonElement s, string type, string path) => type switch
    {
        "null" => GrammarNode.Literal("null"),
        "boolean" => GrammarNode.Alt(GrammarNode.Literal("true"), GrammarNode.Literal("false")),
        "string" => StringOf(s, path),
        "integer" => IntegerOf(s, path),
        "number" => NumberOf(s, path),
        "object" => Object(s, path),
        _ => Array(s, path),
    };

    private GrammarNode Ref(string reference, string path)
    {
        if (reference == "#") return new RuleRef(_rootRule);
        if (!reference.StartsWith("#/", StringComparison.Ordinal)) throw Invalid($"$ref '{reference}' is not supported (only references into this document, like '#/$defs/name')", path);
        if (_refs.TryGetValue(reference, out var known)) return known;
        var target = _root;
        foreach (var raw in reference[2..].Split('/'))
        {
            var segment = Uri.UnescapeDataString(raw).Replace("~1", "/").Replace("~0", "~");
            if (target.ValueKind == JsonValueKind.Object && target.TryGetProperty(segment, out var next)) target = next;
            else if (target.ValueKind == JsonValueKind.Array && int.TryParse(segment, CultureInfo.InvariantCulture, out var i) && i >= 0 && i < target.GetArrayLength()) target = target[i];
            else throw Invalid($"$ref '{reference}' does not resolve", path);
        }
        var name = _grammar.FreshName($"{_rootRule}:{reference}");
        var rule = new RuleRef(name);
        _refs[reference] = rule;
        _grammar.Rules[name] = GrammarNode.Empty; // reserved while its body (which may refer back) compiles
        _grammar.Rules[name] = Schema(target, reference);
        return rule;
    }

    // ---- strings

    private GrammarNode StringOf(JsonElement s, string path)
    {
        var quote = GrammarNode.Literal("\"");
        if (s.TryGetProperty("format", out var format))
        {
            var f = format.GetString();
            var pattern = f switch
            {
                "date" => DatePattern,
                "time" => TimePattern,
                "date-time" => $"{DatePattern}T{TimePattern}",
                "uuid" => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "email" => "[a-zA-Z0-9_+-]{1,32}(\\.[a-zA-Z0-9_+-]{1,32}){0,3}@[a-zA-Z0-9]{1,32}(-[a-zA-Z0-9]{1,32}){0,2}(\\.[a-zA-Z0-9]{1,32}(-[a-zA-Z0-9]{1,32}){0,2}){0,3}\\.[a-zA-Z]{2,12}",
                _ => throw Invalid($"format '{f}' is not supported (date-time, date, time, uuid, email are)", path),
            };
            if (s.TryGetProperty("pattern", out _)) throw Unsupported("pattern", path, " beside 'format'");
            return GrammarNode.Seq(quote, RegexParser.Parse(pattern, _field, CharacterEncoding.JsonString), quote);
        }
        if (s.TryGetProperty("pattern", out var regex))
        {
            if (s.TryGetProperty("minLength", out _) || s.TryGetProperty("maxLength", out _))
                throw Unsupported(s.TryGetProperty("minLength", out _) ? "minLength" : "maxLength", path, " beside 'pattern'");
            GrammarNode content;
            try { content = RegexParser.Parse(regex.GetString() ?? "", _field, CharacterEncoding.JsonString); }
            catch (ConstraintException e) { throw Invalid($"pattern: {e.Message.TrimEnd('.')}", path); }
            return GrammarNode.Seq(quote, content, quote);
        }
        var min = Count(s, "minLength", path) ?? 0;
        var max = Count(s, "maxLength", path) ?? RepeatNode.Unbounded;
        if (max != RepeatNode.Unbounded && max < min) throw Invalid("maxLength is below minLength", path);
        if (min > RegexParser.MaxRepeat || max > RegexParser.MaxRepeat) throw Invalid($"string length bounds above {RegexParser.MaxRepeat} are not supported", path);
        return GrammarNode.Seq(quote, new RepeatNode(StringChar(), min, max), quote);
    }

    // Days within each month's length (29 February is left out rather than checking leap years).
    private const string DatePattern = "[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))";
    private const string TimePattern = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";

    /// <summary>One character of a JSON string: any but <c>"</c>, <c>\</c> and controls raw, or an escape (no lone surrogates).</summary>
    private RuleRef StringChar() => Shared("char", _ =>
    {
        var plain = CodePointSet.Of(('"', '"'), ('\\', '\\'), (0, 0x1F)).Complement().ToUtf8();
        var hex = new ByteNode(ByteSet.Range('0', '9').Union(ByteSet.Range('a', 'f')).Union(ByteSet.Range('A', 'F')));
        var notSurrogate = GrammarNode.Alt(
            GrammarNode.Seq(new ByteNode(ByteSet.Range('0', '9').Union(ByteSet.Range('a', 'c')).Union(ByteSet.Range('A', 'C')).Union(ByteSet.Range('e', 'f')).Union(ByteSet.Range('E', 'F'))), hex, hex, hex),
            GrammarNode.Seq(new ByteNode(ByteSet.Of((byte)'d').Union(ByteSet.Of((byte)'D'))), new ByteNode(ByteSet.Range('0', '7')), hex, hex));
        var simple = new ByteNode(ByteSet.Of((byte)'"').Union(ByteSet.Of((byte)'\\')).Union(ByteSet.Of((byte)'/')).Union(ByteSet.Of((byte)'b'))
            .Union(ByteSet.Of((byte)'f')).Union(ByteSet.Of((byte)'n')).Union(ByteSet.Of((byte)'r')).Union(ByteSet.Of((byte)'t')));
        return GrammarNode.Alt(plain, GrammarNode.Seq(GrammarNode.Literal("\\"), GrammarNode.Alt(simple, GrammarNode.Seq(GrammarNode.Literal("u"), notSurrogate))));
    });

    private RuleRef AnyString() => Shared("string", c => GrammarNode.Seq(GrammarNode.Literal("\""), GrammarNode.Star(c.StringChar()), GrammarNode.Literal("\"")));

    // ---- numbers

    private GrammarNode IntegerOf(JsonElement s, string path)
    {
        if (s.TryGetProperty("multipleOf", out _)) throw Unsupported("multipleOf", path);
        var lo = -Pow10(MaxDigits) + 1;
        var hi = Pow10(MaxDigits) - 1;
        if (Number(s, "minimum", path) is { } min) lo = Math.Max(lo, (long)Math.Ceiling(min));
        if (Number(s, "exclusiveMinimum", path) is { } xmin) lo = Math.Max(lo, (long)Math.Floor(xmin) + 1);
        if (Number(s, "maximum", path) is { } max) hi = Math.Min(hi, (long)Math.Floor(max));
        if (Number(s, "exclusiveMaximum", path) is { } xmax) hi = Math.Min(hi, (long)Math.Ceiling(xmax) - 1);
        if (lo > hi) throw Invalid("no integer lies within the bounds", path);
        return IntegerRange(lo, hi);
    }

    private GrammarNode NumberOf(JsonElement s, string path)
    {
        foreach (var k in new[] { "exclusiveMinimum", "exclusiveMaximum", "multipleOf" })
            if (s.TryGetProperty(k, out _)) throw Unsupported(k, path, " for type number");
        var min = Number(s, "minimum", path);
        var max = Number(s, "maximum", path);
        if (min is null && max is null) return AnyNumber();
        var limit = (double)(Pow10(MaxDigits) - 1);
        var lo = Math.Max(min ?? -limit, -limit);
        var hi = Math.Min(max ?? limit, limit);
        if (lo > hi) throw Invalid("no number lies within the bounds", path);
        var fraction = GrammarNode.Seq(GrammarNode.Literal("."), new RepeatNode(new ByteNode(ByteSet.Range('0', '9')), 1, MaxFractionDigits));
        var alternatives = new List<GrammarNode>();
        // Values >= 0: integers in [a, b], and k.fff for k in [a, b - 1] (so k.fff < b).
        if (hi >= 0)
        {
            long a = (long)Math.Ceiling(Math.Max(lo, 0)), b = (long)Math.Floor(hi);
            if (a <= b) alternatives.Add(NonNegative(a, b));
            if (a <= b - 1) alternatives.Add(GrammarNode.Seq(NonNegative(a, b - 1), fraction));
        }
        // Values < 0, as "-" and a magnitude m in [A, B]: integers m >= 1, and k.fff for k in [A, B - 1].
        if (lo < 0)
        {
            long a = (long)Math.Ceiling(-Math.Min(hi, 0)), b = (long)Math.Floor(-lo);
            var minus = GrammarNode.Literal("-");
            if (Math.Max(a, 1) <= b) alternatives.Add(GrammarNode.Seq(minus, NonNegative(Math.Max(a, 1), b)));
            if (a <= b - 1) alternatives.Add(GrammarNode.Seq(minus, NonNegative(a, b - 1), fraction));
        }
        if (alternatives.Count == 0) throw Invalid("no number in plain decimal lies within the bounds", path);
        return GrammarNode.Alt([.. alternatives]);
    }

    private RuleRef AnyNumber() => Shared("number", _ =>
    {
        var digit = new ByteNode(ByteSet.Range('0', '9'));
        var integer = GrammarNode.Seq(GrammarNode.Optional(GrammarNode.Literal("-")),
            GrammarNode.Alt(GrammarNode.Literal("0"), GrammarNode.Seq(new ByteNode(ByteSet.Range('1', '9')), new RepeatNode(digit, 0, MaxDigits - 1))));
        var fraction = GrammarNode.Seq(GrammarNode.Literal("."), new RepeatNode(digit, 1, MaxFractionDigits));
        var exponent = GrammarNode.Seq(new ByteNode(ByteSet.Of((byte)'e').Union(ByteSet.Of((byte)'E'))),
            GrammarNode.Optional(new ByteNode(ByteSet.Of((byte)'+').Union(ByteSet.Of((byte)'-')))), new RepeatNode(digit, 1, 2));
        return GrammarNode.Seq(integer, GrammarNode.Optional(fraction), GrammarNode.Optional(exponent));
    });

    /// <summary>The decimal integers in [lo, hi], without leading zeros or "-0".</summary>
    public static GrammarNode IntegerRange(long lo, long hi)
    {
        var alternatives = new List<GrammarNode>();
        if (lo < 0) alternatives.Add(GrammarNode.Seq(GrammarNode.Literal("-"), NonNegative(-Math.Min(hi, -1), -lo)));
        if (hi >= 0) alternatives.Add(NonNegative(Math.Max(lo, 0), hi));
        return GrammarNode.Alt([.. alternatives]);
    }

    /// <summary>The decimal integers in [lo, hi] (0 &lt;= lo &lt;= hi), split by digit count.</summary>
    private static GrammarNode NonNegative(long lo, long hi)
    {
        var alternatives = new List<GrammarNode>();
        for (var digits = lo.ToString(CultureInfo.InvariantCulture).Length; digits <= hi.ToString(CultureInfo.InvariantCulture).Length; digits++)
        {
            var from = Math.Max(lo, digits == 1 ? 0 : Pow10(digits - 1));
            var to = Math.Min(hi, Pow10(digits) - 1);
            if (from <= to) alternatives.Add(SameLength(from.ToString(CultureInfo.InvariantCulture), to.ToString(CultureInfo.InvariantCulture)));
        }
        return GrammarNode.Alt([.. alternatives]);
    }

    /// <summary>Digit strings of one length between <paramref name="lo"/> and <paramref name="hi"/> inclusive.</summary>
    private static GrammarNode SameLength(string lo, string hi)
    {
        if (lo.Length == 0) return GrammarNode.Empty;
        var anyDigits = new RepeatNode(new ByteNode(ByteSet.Range('0', '9')), lo.Length - 1, lo.Length - 1);
        if (lo[0] == hi[0]) return GrammarNode.Seq(GrammarNode.Literal(lo[..1]), SameLength(lo[1..], hi[1..]));
        if (lo.AsSpan(1).TrimStart('0').IsEmpty && hi.AsSpan(1).TrimStart('9').IsEmpty)
            return GrammarNode.Seq(new ByteNode(ByteSet.Range(lo[0], hi[0])), anyDigits);
        var alternatives = new List<GrammarNode>
        {
            GrammarNode.Seq(GrammarNode.Literal(lo[..1]), SameLength(lo[1..], new string('9', lo.Length - 1))),
        };
        if (lo[0] + 1 <= hi[0] - 1) alternatives.Add(GrammarNode.Seq(new ByteNode(ByteSet.Range(lo[0] + 1, hi[0] - 1)), anyDigits));
        alternatives.Add(GrammarNode.Seq(GrammarNode.Literal(hi[..1]), SameLength(new string('0', hi.Length - 1), hi[1..])));
        return GrammarNode.Alt([.. alternatives]);
    }

    private static long Pow10(int n)
    {
        long v = 1;
        for (var i = 0; i < n; i++) v *= 10;
        return v;
    }

    private double? Number(JsonElement s, string keyword, string path)
    {
        if (!s.TryGetProperty(keyword, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number) throw Invalid($"'{keyword}' must be a number", path);
        return v.GetDouble();
    }

    private int? Count(JsonElement s, string keyword, string path)
    {
        if (!s.TryGetProperty(keyword, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n) || n < 0) throw Invalid($"'{keyword}' must be a non-negative integer", path);
        return n;
    }

    // ---- objects and arrays

    private GrammarNode Object(JsonElement s, string path)
    {
        foreach (var k in new[] { "minProperties", "maxProperties", "patternProperties", "propertyNames" })
            if (s.TryGetProperty(k, out _)) throw Unsupported(k, path);
        var additional = s.TryGetProperty("additionalProperties", out var a) ? a : default;
        if (!s.TryGetProperty("properties", out var properties) || properties.ValueKind != JsonValueKind.Object || !properties.EnumerateObject().Any())
        {
            if (s.TryGetProperty("required", out var req) && req.GetArrayLength() > 0)
                throw Invalid("'required' names properties that 'properties' does not define", path);
            if (additional.ValueKind == JsonValueKind.False) return GrammarNode.Literal("{}");
            if (additional.ValueKind == JsonValueKind.Object) return ObjectOf(Schema(additional, $"{path}/additionalProperties"));
            return Shared("object", c => c.ObjectOf(c.AnyValue()));
        }
        if (additional.ValueKind == JsonValueKind.Object) throw Unsupported("additionalProperties", path, " with a schema beside 'properties'");

        var required = new HashSet<string>(StringComparer.Ordinal);
        if (s.TryGetProperty("required", out var names))
            foreach (var n in names.EnumerateArray())
            {
                var name = n.GetString()!;
                if (!properties.TryGetProperty(name, out _)) throw Invalid($"required property '{name}' is not in 'properties'", path);
                required.Add(name);
            }
        var members = properties.EnumerateObject()
            .Select(p => (Node: (GrammarNode)_grammar.AddRule("member", GrammarNode.Seq(GrammarNode.Literal(Canonical(p.Name) + ": "), Schema(p.Value, $"{path}/properties/{p.Name}"))),
                Required: required.Contains(p.Name)))
            .ToList();

        // first[i]: members i.. when none was written yet; rest[i]: members i.. after one was (each prefixed by ", ").
        // Rules, not nested nodes: optional members would otherwise copy their tails exponentially.
        GrammarNode first = GrammarNode.Empty, rest = GrammarNode.Empty;
        for (var i = members.Count - 1; i >= 0; i--)
        {
            var (node, isRequired) = members[i];
            var restRule = _grammar.AddRule("members", rest);
            var firstBody = GrammarNode.Seq(node, restRule);
            var restBody = GrammarNode.Seq(GrammarNode.Literal(", "), node, restRule);
            first = isRequired ? firstBody : GrammarNode.Alt(firstBody, first);
            rest = isRequired ? restBody : GrammarNode.Alt(restBody, restRule);
            if (i > 0) first = _grammar.AddRule("members", first);
        }
        return GrammarNode.Seq(GrammarNode.Literal("{"), first, GrammarNode.Literal("}"));
    }

    /// <summary>An object with any keys, each value of <paramref name="value"/>.</summary>
    private GrammarNode ObjectOf(GrammarNode value)
    {
        var member = GrammarNode.Seq(AnyString(), GrammarNode.Literal(": "), value);
        return GrammarNode.Seq(GrammarNode.Literal("{"),
            GrammarNode.Optional(GrammarNode.Seq(member, GrammarNode.Star(GrammarNode.Seq(GrammarNode.Literal(", "), member)))),
            GrammarNode.Literal("}"));
    }

    private GrammarNode Array(JsonElement s, string path)
    {
        foreach (var k in new[] { "uniqueItems", "contains", "minContains", "maxContains", "unevaluatedItems" })
            if (s.TryGetProperty(k, out _)) throw Unsupported(k, path);
        var minItems = Count(s, "minItems", path) ?? 0;
        var maxItems = Count(s, "maxItems", path);
        if (maxItems < minItems) throw Invalid("maxItems is below minItems", path);
        if (minItems > RegexParser.MaxRepeat || maxItems > RegexParser.MaxRepeat) throw Invalid($"array length bounds above {RegexParser.MaxRepeat} are not supported", path);
        var prefix = new List<GrammarNode>();
        if (s.TryGetProperty("prefixItems", out var prefixItems))
            foreach (var (p, i) in prefixItems.EnumerateArray().Select((p, i) => (p, i)))
                if (maxItems is null || i < maxItems) prefix.Add(Schema(p, $"{path}/prefixItems/{i}"));
        GrammarNode? item = null;
        if (!s.TryGetProperty("items", out var items)) item = AnyValue();
        else if (items.ValueKind != JsonValueKind.False) item = Schema(items, $"{path}/items");
        if (item is null && minItems > prefix.Count) throw Invalid("minItems asks for more items than 'items': false allows", path);

        var separator = GrammarNode.Literal(", ");
        var more = item is null ? 0 : (maxItems ?? int.MaxValue) - prefix.Count;
        var fewest = Math.Max(0, minItems - prefix.Count);
        var parts = new List<GrammarNode> { GrammarNode.Literal("[") };
        for (var i = 0; i < prefix.Count; i++) parts.Add(i == 0 ? prefix[i] : GrammarNode.Seq(separator, prefix[i]));
        if (item is not null && more > 0)
        {
            var max = maxItems is null ? RepeatNode.Unbounded : more;
            if (prefix.Count > 0) parts.Add(new RepeatNode(GrammarNode.Seq(separator, item), fewest, max));
            else
            {
                var tail = new RepeatNode(GrammarNode.Seq(separator, item), Math.Max(0, fewest - 1), max == RepeatNode.Unbounded ? max : max - 1);
                var nonEmpty = GrammarNode.Seq(item, tail);
                parts.Add(fewest > 0 ? nonEmpty : GrammarNode.Optional(nonEmpty));
            }
        }
        parts.Add(GrammarNode.Literal("]"));
        return GrammarNode.Seq([.. parts]);
    }

    /// <summary>Any JSON value (a schema with no constraint).</summary>
    private RuleRef AnyValue()
    {
        if (_shared.TryGetValue("value", out var known)) return known;
        var name = _grammar.FreshName($"{_rootRule}:value");
        var value = new RuleRef(name);
        _shared["value"] = value;
        var array = GrammarNode.Seq(GrammarNode.Literal("["),
            GrammarNode.Optional(GrammarNode.Seq(value, GrammarNode.Star(GrammarNode.Seq(GrammarNode.Literal(", "), value)))),
            GrammarNode.Literal("]"));
        _grammar.Rules[name] = GrammarNode.Alt(Shared("object", c => c.ObjectOf(value)), array, AnyString(), AnyNumber(),
            GrammarNode.Literal("true"), GrammarNode.Literal("false"), GrammarNode.Literal("null"));
        return value;
    }

    private RuleRef Shared(string name, Func<JsonSchemaCompiler, GrammarNode> body)
    {
        if (_shared.TryGetValue(name, out var known)) return known;
        var rule = new RuleRef(_grammar.FreshName($"{_rootRule}:{name}"));
        _shared[name] = rule;
        _grammar.Rules[rule.Name] = GrammarNode.Empty;
        _grammar.Rules[rule.Name] = body(this);
        return rule;
    }

    /// <summary>A JSON value written the way the grammar writes values (", " and ": " separators).</summary>
    private static string Canonical(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => "{" + string.Join(", ", v.EnumerateObject().Select(p => Canonical(p.Name) + ": " + Canonical(p.Value))) + "}",
        JsonValueKind.Array => "[" + string.Join(", ", v.EnumerateArray().Select(Canonical)) + "]",
        JsonValueKind.String => Canonical(v.GetString()!),
        _ => v.GetRawText(),
    };

    private static string Canonical(string s) => JsonSerializer.Serialize(s, CanonicalStrings);
}
