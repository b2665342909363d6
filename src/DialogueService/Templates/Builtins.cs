using System.Globalization;

namespace ChatServices.DialogueService.Templates;

/// <summary>An error raised while rendering; the interpreter attaches the position of the statement that failed.</summary>
internal sealed class RenderError(string message, bool raisedByTemplate = false) : Exception(message)
{
    public int Offset { get; set; } = -1;

    public bool RaisedByTemplate { get; } = raisedByTemplate;
}

/// <summary>The global functions every template sees: namespace, raise_exception, range, strftime_now.</summary>
internal static class Builtins
{
    public static readonly FunctionValue Namespace = new("namespace", static (args, _) =>
    {
        var positional = args;
        ObjectValue? kwargs = null;
        if (positional.Count > 0 && positional[^1] is ObjectValue { IsKeywordArguments: true } last)
        {
            kwargs = last;
            positional = positional.GetRange(0, positional.Count - 1);
        }
        if (positional.Count > 1) throw new RenderError($"namespace expected at most 1 argument, got {positional.Count}");
        var entries = new OrderedDictionary<string, Value>(StringComparer.Ordinal);
        if (positional.Count == 1)
        {
            switch (positional[0])
            {
                case ObjectValue source:
                    foreach (var (key, value) in source.Entries) entries[key] = value;
                    break;
                case ArrayValue pairs:
                    foreach (var pair in pairs.Items)
                    {
                        var items = pair switch
                        {
                            ArrayValue a => a.Items,
                            StringValue s => JsFormat.CodePoints(s.Text).Select(c => (Value)new StringValue(c)).ToList(),
                            _ => null,
                        };
                        if (items is not { Count: 2 }) throw new RenderError("namespace expected an object or an iterable of [key, value] pairs");
                        if (items[0] is not StringValue key) throw new RenderError("namespace keys must be strings");
                        entries[key.Text] = items[1];
                    }
                    break;
                default:
                    throw new RenderError($"'{positional[0].TypeName}' object is not iterable");
            }
        }
        if (kwargs is not null)
            foreach (var (key, value) in kwargs.Entries) entries[key] = value;
        return new NamespaceValue(entries);
    });

    public static readonly FunctionValue RaiseException = new("raise_exception", static (args, _) =>
    {
        var message = args.Count == 0 ? "" : args[0] switch
        {
            StringValue s => s.Text,
            var other => other.RawString(),
        };
        throw new RenderError(message, raisedByTemplate: true);
    });

    /// <summary>Declares the reference's globals in the outermost scope.</summary>
    public static void DeclareGlobals(Scope scope, Interpreter interpreter)
    {
        scope.TryDeclare("false", BooleanValue.False);
        scope.TryDeclare("true", BooleanValue.True);
        scope.TryDeclare("none", NullValue.Instance);
        scope.TryDeclare("raise_exception", RaiseException);
        scope.TryDeclare("range", new FunctionValue("range", interpreter.Range));
        scope.TryDeclare("strftime_now", new FunctionValue("strftime_now", interpreter.StrftimeNow));
        scope.TryDeclare("True", BooleanValue.True);
        scope.TryDeclare("False", BooleanValue.False);
        scope.TryDeclare("None", NullValue.Instance);
    }

    /// <summary>The reference's minimal strftime: %Y %m %d %b %B %H %M %% in en-US, anything else left as written.</summary>
    public static string Strftime(DateTimeOffset now, string format)
    {
        var sb = new System.Text.StringBuilder(format.Length + 16);
        var culture = CultureInfo.GetCultureInfo("en-US");
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] == '%' && i + 1 < format.Length)
            {
                string? piece = format[i + 1] switch
                {
                    'Y' => now.Year.ToString(CultureInfo.InvariantCulture),
                    'm' => now.Month.ToString("00", CultureInfo.InvariantCulture),
                    'd' => now.Day.ToString("00", CultureInfo.InvariantCulture),
                    'b' => culture.DateTimeFormat.GetAbbreviatedMonthName(now.Month),
                    'B' => culture.DateTimeFormat.GetMonthName(now.Month),
                    'H' => now.Hour.ToString("00", CultureInfo.InvariantCulture),
                    'M' => now.Minute.ToString("00", CultureInfo.InvariantCulture),
                    '%' => "%",
                    _ => null,
                };
                if (piece is not null)
                {
                    sb.Append(piece);
                    i++;
                    continue;
                }
            }
            sb.Append(format[i]);
        }
        return sb.ToString();
    }
}
