namespace ChatServices.DialogueService.Templates;

/// <summary>
/// The reference compares the JavaScript values underneath: <c>==</c> is JavaScript's loose equality
/// (so <c>1 == true</c> and <c>"1" == 1</c>), while <c>in</c> and the <c>eq</c> test use strict equality.
/// Lists, mappings and namespaces compare by identity.
/// </summary>
internal static class Equality
{
    private static object? Reference(Value v) => v switch
    {
        ArrayValue a => a.Items,
        ObjectValue o => o.Entries,
        NamespaceValue n => n.Entries,
        FunctionValue f => f,
        _ => null,
    };

    public static bool Strict(Value a, Value b)
    {
        switch (a)
        {
            case NumberValue x:
                return b is NumberValue xn && x.Number == xn.Number;
            case StringValue s:
                return b is StringValue sn && string.Equals(s.Text, sn.Text, StringComparison.Ordinal);
            case BooleanValue t:
                return b is BooleanValue tn && t.Bool == tn.Bool;
            case NullValue:
                return b is NullValue;
            case UndefinedValue:
                return b is UndefinedValue;
            default:
                var r = Reference(a);
                return r is not null && ReferenceEquals(r, Reference(b));
        }
    }

    public static bool Loose(Value a, Value b)
    {
        if (a is StringValue sa && b is StringValue sb) return string.Equals(sa.Text, sb.Text, StringComparison.Ordinal);
        if (a is NumberValue na && b is NumberValue nb) return na.Number == nb.Number;
        if (a.IsNullish || b.IsNullish) return a.IsNullish && b.IsNullish;
        var ra = Reference(a);
        var rb = Reference(b);
        if (ra is not null && rb is not null) return ReferenceEquals(ra, rb);
        // An object against a primitive: the object becomes its string form first (ToPrimitive).
        return LoosePrimitive(ra is not null ? a.RawString() : Primitive(a), rb is not null ? b.RawString() : Primitive(b));
    }

    private static object Primitive(Value v) => v switch
    {
        NumberValue n => n.Number,
        StringValue s => s.Text,
        BooleanValue b => b.Bool,
        _ => v.RawString(),
    };

    private static bool LoosePrimitive(object x, object y)
    {
        if (x is bool bx) return LoosePrimitive(bx ? 1.0 : 0.0, y);
        if (y is bool by) return LoosePrimitive(x, by ? 1.0 : 0.0);
        return (x, y) switch
        {
            (double dx, double dy) => dx == dy,
            (string sx, string sy) => string.Equals(sx, sy, StringComparison.Ordinal),
            (double dx, string sy) => dx == JsFormat.StringToNumber(sy),
            (string sx, double dy) => JsFormat.StringToNumber(sx) == dy,
            _ => false,
        };
    }

    /// <summary>The reference's ordering for sort and dictsort: numbers (and booleans) together, strings together, nothing else.</summary>
    public static int Compare(Value a, Value b, bool caseSensitive)
    {
        if (a is NullValue && b is NullValue) return 0;
        if (a is NullValue || b is NullValue) throw new RenderError($"Cannot compare {a.TypeName} with {b.TypeName}");
        if (a is UndefinedValue && b is UndefinedValue) return 0;
        if (a is UndefinedValue || b is UndefinedValue) throw new RenderError($"Cannot compare {a.TypeName} with {b.TypeName}");
        if (a is NumberValue or BooleanValue && b is NumberValue or BooleanValue)
        {
            var x = a is BooleanValue ba ? (ba.Bool ? 1 : 0) : ((NumberValue)a).Number;
            var y = b is BooleanValue bb ? (bb.Bool ? 1 : 0) : ((NumberValue)b).Number;
            return x < y ? -1 : x > y ? 1 : 0;
        }
        if (a.Kind != b.Kind) throw new RenderError($"Cannot compare different types: {a.TypeName} and {b.TypeName}");
        if (a is StringValue sa && b is StringValue sb)
        {
            var x = caseSensitive ? sa.Text : JsFormat.ToLower(sa.Text);
            var y = caseSensitive ? sb.Text : JsFormat.ToLower(sb.Text);
            return Math.Sign(string.CompareOrdinal(x, y));
        }
        throw new RenderError($"Cannot compare type: {a.TypeName}");
    }
}

/// <summary>The tests of <c>x is name</c>, as the reference defines them.</summary>
internal static class Tests
{
    public delegate bool Test(Value operand, Value? argument);

    private static readonly Dictionary<string, Test> All = new(StringComparer.Ordinal)
    {
        ["boolean"] = (v, _) => v is BooleanValue,
        ["callable"] = (v, _) => v is FunctionValue,
        ["odd"] = (v, _) => v is NumberValue { IsFloat: false } n ? n.Number % 2 != 0 : throw new RenderError($"cannot odd on {v.TypeName}"),
        ["even"] = (v, _) => v is NumberValue { IsFloat: false } n ? n.Number % 2 == 0 : throw new RenderError($"cannot even on {v.TypeName}"),
        ["false"] = (v, _) => v is BooleanValue { Bool: false },
        ["true"] = (v, _) => v is BooleanValue { Bool: true },
        ["none"] = (v, _) => v is NullValue,
        ["string"] = (v, _) => v is StringValue,
        ["number"] = (v, _) => v is NumberValue,
        ["integer"] = (v, _) => v is NumberValue { IsFloat: false },
        ["iterable"] = (v, _) => v.Kind is ValueKind.Array or ValueKind.String,
        ["mapping"] = (v, _) => v is ObjectValue,
        ["sequence"] = (v, _) => v is ArrayValue or ObjectValue or StringValue,
        ["lower"] = (v, _) => v is StringValue s ? s.Text == JsFormat.ToLower(s.Text) : throw new RenderError($"cannot test 'lower' on {v.TypeName}"),
        ["upper"] = (v, _) => v is StringValue s ? s.Text == JsFormat.ToUpper(s.Text) : throw new RenderError($"cannot test 'upper' on {v.TypeName}"),
        ["defined"] = (v, _) => v is not UndefinedValue,
        ["undefined"] = (v, _) => v is UndefinedValue,
        ["equalto"] = Equal,
        ["eq"] = Equal,
    };

    private static bool Equal(Value a, Value? b) =>
        b is null ? throw new RenderError("the 'eq' test needs a value to compare with") : Equality.Strict(a, b);

    public static bool TryGet(string name, out Test test) => All.TryGetValue(name, out test!);
}
