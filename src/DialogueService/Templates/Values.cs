using System.Text;

namespace ChatServices.DialogueService.Templates;

internal enum ValueKind
{
    Integer,
    Float,
    String,
    Boolean,
    Object,
    KeywordArguments,
    Namespace,
    Array,
    Tuple,
    Function,
    Null,
    Undefined,
}

/// <summary>
/// A runtime value with @huggingface/jinja's semantics (its values are JavaScript values underneath, so
/// numbers are doubles, strings are UTF-16, and equality is JavaScript's loose <c>==</c>). Values are
/// immutable except lists, mappings and namespaces, which templates may share by reference.
/// </summary>
internal abstract class Value
{
    public abstract ValueKind Kind { get; }

    /// <summary>Python truthiness as the reference defines it: empty lists and mappings are false.</summary>
    public abstract bool IsTruthy { get; }

    public bool IsNullish => Kind is ValueKind.Null or ValueKind.Undefined;

    public bool IsNumber => Kind is ValueKind.Integer or ValueKind.Float;

    /// <summary>A list or a tuple.</summary>
    public bool IsList => Kind is ValueKind.Array or ValueKind.Tuple;

    /// <summary>A mapping, keyword arguments included.</summary>
    public bool IsMapping => Kind is ValueKind.Object or ValueKind.KeywordArguments;

    /// <summary>What <c>{{ value }}</c> prints (the reference's <c>toString()</c>).</summary>
    public abstract string Display();

    /// <summary>
    /// The underlying JavaScript value's string form (<c>value.toString()</c>), which <c>+</c>, <c>~</c> and
    /// <c>join</c> use: <c>2.0</c> is "2" here but "2.0" when printed; a list is its items joined by commas.
    /// </summary>
    public virtual string RawString() => Display();

    public string TypeName => Kind switch
    {
        ValueKind.Integer => "IntegerValue",
        ValueKind.Float => "FloatValue",
        ValueKind.String => "StringValue",
        ValueKind.Boolean => "BooleanValue",
        ValueKind.Object => "ObjectValue",
        ValueKind.KeywordArguments => "KeywordArgumentsValue",
        ValueKind.Namespace => "NamespaceValue",
        ValueKind.Array => "ArrayValue",
        ValueKind.Tuple => "TupleValue",
        ValueKind.Function => "FunctionValue",
        ValueKind.Null => "NullValue",
        _ => "UndefinedValue",
    };
}

internal sealed class NumberValue : Value
{
    private static readonly NumberValue[] SmallIntegers = CreateSmallIntegers();

    private NumberValue(double number, bool isFloat)
    {
        Number = number;
        IsFloat = isFloat;
    }

    public double Number { get; }

    public bool IsFloat { get; }

    public override ValueKind Kind => IsFloat ? ValueKind.Float : ValueKind.Integer;

    public override bool IsTruthy => Number != 0 && !double.IsNaN(Number);

    public static NumberValue Integer(double n) =>
        n is >= 0 and < 256 && n == Math.Floor(n) && !double.IsNegative(n) ? SmallIntegers[(int)n] : new NumberValue(n, false);

    public static NumberValue Float(double n) => new(n, true);

    private static NumberValue[] CreateSmallIntegers()
    {
        var values = new NumberValue[256];
        for (var i = 0; i < values.Length; i++) values[i] = new NumberValue(i, false);
        return values;
    }

    public override string Display() => IsFloat ? JsFormat.FloatToString(Number) : JsFormat.NumberToString(Number);

    public override string RawString() => JsFormat.NumberToString(Number);
}

internal sealed class StringValue(string text) : Value
{
    public static readonly StringValue Empty = new("");

    public string Text { get; } = text;

    public override ValueKind Kind => ValueKind.String;

    public override bool IsTruthy => Text.Length > 0;

    public override string Display() => Text;
}

internal sealed class BooleanValue : Value
{
    public static readonly BooleanValue True = new(true);
    public static readonly BooleanValue False = new(false);

    private BooleanValue(bool value) => Bool = value;

    public bool Bool { get; }

    public static BooleanValue Of(bool value) => value ? True : False;

    public override ValueKind Kind => ValueKind.Boolean;

    public override bool IsTruthy => Bool;

    public override string Display() => Bool ? "true" : "false";
}

internal sealed class NullValue : Value
{
    public static readonly NullValue Instance = new();

    public override ValueKind Kind => ValueKind.Null;

    public override bool IsTruthy => false;

    public override string Display() => "null";
}

internal sealed class UndefinedValue : Value
{
    public static readonly UndefinedValue Instance = new();

    public override ValueKind Kind => ValueKind.Undefined;

    public override bool IsTruthy => false;

    public override string Display() => "undefined";
}

/// <summary>A list, or a tuple (which the reference prints and serialises differently: not at all).</summary>
internal sealed class ArrayValue(List<Value> items, bool isTuple = false) : Value
{
    public List<Value> Items { get; } = items;

    public bool IsTuple { get; } = isTuple;

    public override ValueKind Kind => IsTuple ? ValueKind.Tuple : ValueKind.Array;

    public override bool IsTruthy => Items.Count > 0;

    public override string Display() => JsFormat.ToJson(this, JsonOptions.Default, 0, convertUndefinedToNull: false);

    public override string RawString()
    {
        // Array.prototype.toString: the items' own toString joined by commas.
        var sb = new StringBuilder();
        for (var i = 0; i < Items.Count; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append(Items[i].Display());
        }
        return sb.ToString();
    }
}

/// <summary>A mapping with insertion-ordered string keys; also the keyword arguments of a call.</summary>
internal sealed class ObjectValue : Value
{
    private OrderedDictionary<string, Value>? _entries;

    // A for loop's `loop` mapping is created for every iteration but usually read for one or two fields,
    // so it keeps the loop's items and index and builds its nine entries only when something needs them all.
    private readonly List<Value>? _loopItems;
    private readonly int _loopIndex;

    public ObjectValue(OrderedDictionary<string, Value> entries, bool isKeywordArguments = false)
    {
        _entries = entries;
        IsKeywordArguments = isKeywordArguments;
    }

    private ObjectValue(List<Value> loopItems, int loopIndex)
    {
        _loopItems = loopItems;
        _loopIndex = loopIndex;
    }

    /// <summary>The <c>loop</c> variable of iteration <paramref name="index"/> over <paramref name="items"/>.</summary>
    public static ObjectValue Loop(List<Value> items, int index) => new(items, index);

    public OrderedDictionary<string, Value> Entries => _entries ??= MaterializeLoop();

    public bool IsKeywordArguments { get; }

    public override ValueKind Kind => IsKeywordArguments ? ValueKind.KeywordArguments : ValueKind.Object;

    public override bool IsTruthy => _entries is null || _entries.Count > 0;

    public bool TryGetEntry(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out Value value)
    {
        if (_entries is not null) return _entries.TryGetValue(key, out value);
        value = LoopField(key);
        return value is not null;
    }

    private static readonly string[] LoopFields = ["index", "index0", "revindex", "revindex0", "first", "last", "length", "previtem", "nextitem"];

    private Value? LoopField(string key)
    {
        var items = _loopItems!;
        var i = _loopIndex;
        return key switch
        {
            "index" => NumberValue.Integer(i + 1),
            "index0" => NumberValue.Integer(i),
            "revindex" => NumberValue.Integer(items.Count - i),
            "revindex0" => NumberValue.Integer(items.Count - i - 1),
            "first" => BooleanValue.Of(i == 0),
            "last" => BooleanValue.Of(i == items.Count - 1),
            "length" => NumberValue.Integer(items.Count),
            "previtem" => i > 0 ? items[i - 1] : UndefinedValue.Instance,
            "nextitem" => i < items.Count - 1 ? items[i + 1] : UndefinedValue.Instance,
            _ => null,
        };
    }

    private OrderedDictionary<string, Value> MaterializeLoop()
    {
        var entries = new OrderedDictionary<string, Value>(LoopFields.Length, StringComparer.Ordinal);
        foreach (var field in LoopFields) entries[field] = LoopField(field)!;
        return entries;
    }

    public override string Display() => JsFormat.ToJson(this, JsonOptions.Default, 0, convertUndefinedToNull: false);

    public override string RawString() => "[object Map]";

    public ArrayValue ItemPairs()
    {
        var list = new List<Value>(Entries.Count);
        foreach (var (key, value) in Entries) list.Add(new ArrayValue([new StringValue(key), value]));
        return new ArrayValue(list);
    }

    public ArrayValue KeyList()
    {
        var list = new List<Value>(Entries.Count);
        foreach (var key in Entries.Keys) list.Add(new StringValue(key));
        return new ArrayValue(list);
    }
}

/// <summary><c>namespace(...)</c>: a mutable attribute bag, the only thing <c>set a.b = ...</c> may assign to.</summary>
internal sealed class NamespaceValue(OrderedDictionary<string, Value> entries) : Value
{
    public OrderedDictionary<string, Value> Entries { get; } = entries;

    public override ValueKind Kind => ValueKind.Namespace;

    public override bool IsTruthy => true;

    public override string Display() => JsFormat.ToJson(this, JsonOptions.Default, 0, convertUndefinedToNull: false);

    public override string RawString() => "[object Map]";
}

internal delegate Value NativeFunction(List<Value> arguments, Scope caller);

internal sealed class FunctionValue(string name, NativeFunction body) : Value
{
    public string Name { get; } = name;

    public NativeFunction Body { get; } = body;

    public override ValueKind Kind => ValueKind.Function;

    public override bool IsTruthy => true;

    public override string Display() => $"function {Name}() {{ [native code] }}";
}
