using System.Text;

namespace ChatServices.DialogueService.Templates;

internal sealed partial class Interpreter
{
    internal void CheckLength(long length)
    {
        if (length > _limits.MaxStringLength)
            throw new RenderError($"String exceeds the limit of {_limits.MaxStringLength} characters");
    }

    /// <summary>
    /// Applies <c>| name</c> or <c>| name(args)</c>. The reference dispatches on the operand's type first, so
    /// the same filter name may exist for one type and fail for another; this follows it case by case.
    /// </summary>
    private Value ApplyFilter(Value operand, Node filterNode, Scope scope)
    {
        if (filterNode is IdentifierNode filter) return ApplySimpleFilter(operand, filter.Name, scope);
        if (filterNode is not CallNode call) throw new RenderError($"Unknown filter: {filterNode.GetType().Name}");
        if (call.Callee is not IdentifierNode callee) throw new RenderError("Unknown filter");
        var name = callee.Name;

        switch (name)
        {
            case "tojson":
            {
                var (_, kwargs) = EvaluateArguments(call.Arguments, scope);
                var indent = kwargs.GetValueOrDefault("indent") ?? NullValue.Instance;
                if (indent is not (NumberValue { IsFloat: false } or NullValue)) throw new RenderError("If set, indent must be a number");
                var ensureAscii = kwargs.GetValueOrDefault("ensure_ascii") ?? BooleanValue.False;
                if (ensureAscii is not BooleanValue ascii) throw new RenderError("If set, ensure_ascii must be a boolean");
                var sortKeys = kwargs.GetValueOrDefault("sort_keys") ?? BooleanValue.False;
                if (sortKeys is not BooleanValue sort) throw new RenderError("If set, sort_keys must be a boolean");
                var separatorsArg = kwargs.GetValueOrDefault("separators") ?? NullValue.Instance;
                (string, string)? separators = null;
                if (separatorsArg is ArrayValue pair)
                {
                    if (pair.Items is not [StringValue item, StringValue key]) throw new RenderError("separators must be a tuple of two strings");
                    separators = (item.Text, key.Text);
                }
                else if (separatorsArg is not NullValue)
                {
                    throw new RenderError("If set, separators must be a tuple of two strings");
                }
                var indentValue = indent is NumberValue n ? (int?)Math.Clamp(n.Number, -1, 1_000) : null;
                return new StringValue(JsFormat.ToJson(operand, new JsonOptions(indentValue, ascii.Bool, separators, sort.Bool), 0, convertUndefinedToNull: true));
            }
            case "join":
            {
                List<string> parts;
                if (operand is StringValue s) parts = JsFormat.CodePoints(s.Text);
                else if (operand is ArrayValue a) parts = a.Items.ConvertAll(JoinPart);
                else throw new RenderError($"Cannot apply filter \"{name}\" to type: {operand.TypeName}");
                var (args, kwargs) = EvaluateArguments(call.Arguments, scope);
                var separator = args.Count > 0 ? args[0] : kwargs.GetValueOrDefault("separator") ?? StringValue.Empty;
                if (separator is not StringValue sep) throw new RenderError("separator must be a string");
                var joined = string.Join(sep.Text, parts);
                CheckLength(joined.Length);
                return new StringValue(joined);
            }
            case "int" or "float":
            {
                var (args, kwargs) = EvaluateArguments(call.Arguments, scope);
                var defaultValue = args.Count > 0 ? args[0] : kwargs.GetValueOrDefault("default") ?? (name == "int" ? NumberValue.Integer(0) : NumberValue.Float(0));
                switch (operand)
                {
                    case StringValue s:
                    {
                        var parsed = name == "int" ? JsFormat.ParseInt(s.Text) : JsFormat.ParseFloat(s.Text);
                        return double.IsNaN(parsed) ? defaultValue : name == "int" ? NumberValue.Integer(parsed) : NumberValue.Float(parsed);
                    }
                    case NumberValue:
                        return operand;
                    case BooleanValue b:
                        return name == "int" ? NumberValue.Integer(b.Bool ? 1 : 0) : NumberValue.Float(b.Bool ? 1 : 0);
                    default:
                        throw new RenderError($"Cannot apply filter \"{name}\" to type: {operand.TypeName}");
                }
            }
            case "default":
            {
                var (args, kwargs) = EvaluateArguments(call.Arguments, scope);
                var defaultValue = args.Count > 0 ? args[0] : StringValue.Empty;
                var boolean = args.Count > 1 ? args[1] : kwargs.GetValueOrDefault("boolean") ?? BooleanValue.False;
                if (boolean is not BooleanValue flag) throw new RenderError("`default` filter flag must be a boolean");
                return operand is UndefinedValue || (flag.Bool && !operand.IsTruthy) ? defaultValue : operand;
            }
        }

        switch (operand)
        {
            case ArrayValue array:
                switch (name)
                {
                    case "sort":
                    {
                        var (args, kwargs) = EvaluateArguments(call.Arguments, scope);
                        Value Option(int i, string key, Value fallback) => i < args.Count ? args[i] : kwargs.GetValueOrDefault(key) ?? fallback;
                        if (Option(0, "reverse", BooleanValue.False) is not BooleanValue reverse) throw new RenderError("reverse must be a boolean");
                        if (Option(1, "case_sensitive", BooleanValue.False) is not BooleanValue caseSensitive) throw new RenderError("case_sensitive must be a boolean");
                        var attribute = Option(2, "attribute", NullValue.Instance);
                        if (attribute is not (StringValue or NumberValue { IsFloat: false } or NullValue))
                            throw new RenderError("attribute must be a string, integer, or null");
                        Value SortKey(Value item) => attribute switch
                        {
                            NullValue => item,
                            StringValue path => AttributeOf(item, path.Text),
                            _ => AttributeOf(item, attribute.RawString()),
                        };
                        return new ArrayValue(StableSort(array.Items, (a, b) =>
                        {
                            var result = Equality.Compare(SortKey(a), SortKey(b), caseSensitive.Bool);
                            return reverse.Bool ? -result : result;
                        }));
                    }
                    case "selectattr" or "rejectattr":
                    {
                        var select = name == "selectattr";
                        if (array.Items.Any(item => item is not (ObjectValue or NamespaceValue)))
                            throw new RenderError($"`{name}` can only be applied to array of objects");
                        if (call.Arguments.Any(a => a is not StringLiteralNode)) throw new RenderError($"arguments of `{name}` must be strings");
                        var args = call.Arguments.ConvertAll(a => ((StringLiteralNode)a).Value);
                        if (args.Count == 0) throw new RenderError($"`{name}` needs an attribute name");
                        Tests.Test test;
                        if (args.Count > 1)
                        {
                            if (!Tests.TryGet(args[1], out test)) throw new RenderError($"Unknown test: {args[1]}");
                        }
                        else
                        {
                            test = static (v, _) => v.IsTruthy;
                        }
                        Value? compareWith = args.Count > 2 ? new StringValue(args[2]) : null;
                        var filtered = new List<Value>();
                        foreach (var item in array.Items)
                        {
                            var entries = item is ObjectValue o ? o.Entries : ((NamespaceValue)item).Entries;
                            var result = entries.TryGetValue(args[0], out var a) && test(a, compareWith);
                            if (result == select) filtered.Add(item);
                        }
                        return new ArrayValue(filtered);
                    }
                    case "map":
                    {
                        var (_, kwargs) = EvaluateArguments(call.Arguments, scope);
                        if (!kwargs.TryGetValue("attribute", out var attr))
                            throw new RenderError("`map` expressions without `attribute` set are not currently supported.");
                        if (attr is not StringValue path) throw new RenderError("attribute must be a string");
                        var fallback = kwargs.GetValueOrDefault("default");
                        var mapped = new List<Value>(array.Items.Count);
                        foreach (var item in array.Items)
                        {
                            if (item is not (ObjectValue or NamespaceValue)) throw new RenderError("items in map must be an object");
                            var value = AttributeOf(item, path.Text);
                            mapped.Add(value is UndefinedValue ? fallback ?? UndefinedValue.Instance : value);
                        }
                        return new ArrayValue(mapped);
                    }
                }
                throw new RenderError($"Unknown ArrayValue filter: {name}");
            case StringValue str:
                switch (name)
                {
                    case "indent":
                    {
                        var (args, kwargs) = EvaluateArguments(call.Arguments, scope);
                        var width = args.Count > 0 ? args[0] : kwargs.GetValueOrDefault("width") ?? NumberValue.Integer(4);
                        if (width is not NumberValue { IsFloat: false } w) throw new RenderError("width must be a number");
                        var first = args.Count > 1 ? args[1] : kwargs.GetValueOrDefault("first") ?? BooleanValue.False;
                        var blank = args.Count > 2 ? args[2] : kwargs.GetValueOrDefault("blank") ?? BooleanValue.False;
                        var pad = Math.Max(0, Math.Min(w.Number, _limits.MaxStringLength));
                        return new StringValue(Indent(str.Text, new string(' ', (int)pad), first.IsTruthy, blank.IsTruthy));
                    }
                    case "replace":
                    {
                        var (args, kwargs) = EvaluateArguments(call.Arguments, scope);
                        args.Add(new ObjectValue(kwargs, isKeywordArguments: true));
                        return Members.Replace(str.Text, args, this);
                    }
                }
                throw new RenderError($"Unknown StringValue filter: {name}");
            case ObjectValue obj:
            {
                if (Members.OfObject(obj, name, this) is FunctionValue builtin)
                {
                    var (args, kwargs) = EvaluateArguments(call.Arguments, scope);
                    if (kwargs.Count > 0) args.Add(new ObjectValue(kwargs, isKeywordArguments: true));
                    return builtin.Body(args, scope);
                }
                throw new RenderError($"Unknown ObjectValue filter: {name}");
            }
            default:
                throw new RenderError($"Cannot apply filter \"{name}\" to type: {operand.TypeName}");
        }
    }

    private Value ApplySimpleFilter(Value operand, string name, Scope scope)
    {
        if (name == "safe") return operand;
        if (name == "tojson") return new StringValue(JsFormat.ToJson(operand, JsonOptions.Default, 0, convertUndefinedToNull: true));

        switch (operand)
        {
            case ArrayValue array:
                switch (name)
                {
                    case "list": return operand;
                    case "first": return array.Items.Count > 0 ? array.Items[0] : UndefinedValue.Instance;
                    case "last": return array.Items.Count > 0 ? array.Items[^1] : UndefinedValue.Instance;
                    case "length": return NumberValue.Integer(array.Items.Count);
                    case "reverse":
                    {
                        var reversed = new List<Value>(array.Items);
                        reversed.Reverse();
                        return new ArrayValue(reversed);
                    }
                    case "sort": return new ArrayValue(StableSort(array.Items, (a, b) => Equality.Compare(a, b, false)));
                    case "join":
                    {
                        var joined = string.Concat(array.Items.Select(JoinPart));
                        CheckLength(joined.Length);
                        return new StringValue(joined);
                    }
                    case "string": return new StringValue(JsFormat.ToJson(operand, JsonOptions.Default, 0, convertUndefinedToNull: false));
                    case "unique":
                    {
                        var output = new List<Value>();
                        foreach (var item in array.Items)
                            if (!output.Any(seen => SameValueZero(seen, item))) output.Add(item);
                        return new ArrayValue(output);
                    }
                    default: throw new RenderError($"Unknown ArrayValue filter: {name}");
                }
            case StringValue str:
                switch (name)
                {
                    case "length": return NumberValue.Integer(str.Text.Length);
                    case "upper": return new StringValue(JsFormat.ToUpper(str.Text));
                    case "lower": return new StringValue(JsFormat.ToLower(str.Text));
                    case "title": return new StringValue(JsFormat.TitleCase(str.Text));
                    case "capitalize": return new StringValue(Members.Capitalize(str.Text));
                    case "trim": return new StringValue(JsFormat.Trim(str.Text));
                    case "indent": return new StringValue(Indent(str.Text, "    ", false, false));
                    case "join" or "string": return operand;
                    case "int":
                    {
                        var parsed = JsFormat.ParseInt(str.Text);
                        return NumberValue.Integer(double.IsNaN(parsed) ? 0 : parsed);
                    }
                    case "float":
                    {
                        var parsed = JsFormat.ParseFloat(str.Text);
                        return NumberValue.Float(double.IsNaN(parsed) ? 0 : parsed);
                    }
                    default: throw new RenderError($"Unknown StringValue filter: {name}");
                }
            case NumberValue number:
                return name switch
                {
                    "abs" => number.IsFloat ? NumberValue.Float(Math.Abs(number.Number)) : NumberValue.Integer(Math.Abs(number.Number)),
                    "int" => NumberValue.Integer(Math.Floor(number.Number)),
                    "float" => NumberValue.Float(number.Number),
                    "string" => new StringValue(number.Display()),
                    _ => throw new RenderError($"Unknown NumericValue filter: {name}"),
                };
            case ObjectValue obj:
                switch (name)
                {
                    case "items": return obj.ItemPairs();
                    case "length": return NumberValue.Integer(obj.Entries.Count);
                    default:
                        if (Members.OfObject(obj, name, this) is FunctionValue builtin) return builtin.Body([], scope);
                        throw new RenderError($"Unknown ObjectValue filter: {name}");
                }
            case BooleanValue boolean:
                return name switch
                {
                    "bool" => boolean,
                    "int" => NumberValue.Integer(boolean.Bool ? 1 : 0),
                    "float" => NumberValue.Float(boolean.Bool ? 1 : 0),
                    "string" => new StringValue(boolean.Bool ? "true" : "false"),
                    _ => throw new RenderError($"Unknown BooleanValue filter: {name}"),
                };
            default:
                throw new RenderError($"Cannot apply filter \"{name}\" to type: {operand.TypeName}");
        }
    }

    /// <summary>Array.prototype.join on the underlying values: null and undefined become empty strings.</summary>
    private static string JoinPart(Value v) => v.IsNullish ? "" : v.RawString();

    private static bool SameValueZero(Value a, Value b) =>
        Equality.Strict(a, b) || (a is NumberValue x && b is NumberValue y && double.IsNaN(x.Number) && double.IsNaN(y.Number));

    /// <summary>JavaScript's sort is stable; List.Sort is not, so sort with a stable merge through OrderBy.</summary>
    private static List<Value> StableSort(List<Value> items, Comparison<Value> comparison) =>
        items.OrderBy(x => x, Comparer<Value>.Create(comparison)).ToList();

    private static string Indent(string text, string indent, bool first, bool blank)
    {
        var lines = text.Split('\n');
        var sb = new StringBuilder(text.Length + lines.Length * indent.Length);
        for (var i = 0; i < lines.Length; i++)
        {
            if (i > 0) sb.Append('\n');
            if (!((!first && i == 0) || (!blank && lines[i].Length == 0))) sb.Append(indent);
            sb.Append(lines[i]);
        }
        return sb.ToString();
    }

    /// <summary>A dotted attribute path such as "details.priority" or "items.0"; undefined where it leads nowhere.</summary>
    private static Value AttributeOf(Value item, string path)
    {
        var value = item;
        foreach (var part in path.Split('.'))
        {
            switch (value)
            {
                case ObjectValue o:
                    value = o.Entries.TryGetValue(part, out var v) ? v : UndefinedValue.Instance;
                    break;
                case NamespaceValue n:
                    value = n.Entries.TryGetValue(part, out var nv) ? nv : UndefinedValue.Instance;
                    break;
                case ArrayValue a:
                {
                    var index = JsFormat.ParseInt(part);
                    if (double.IsNaN(index) || index < 0 || index >= a.Items.Count) return UndefinedValue.Instance;
                    value = a.Items[(int)index];
                    break;
                }
                default:
                    return UndefinedValue.Instance;
            }
        }
        return value;
    }
}
